import Database from 'better-sqlite3'
import type { Database as SqliteDatabase, Statement } from 'better-sqlite3'
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import { checkSessionLifetime } from 'fastify-sso-protocol'
import type { SessionLifetime, SsoAccount } from 'fastify-sso-protocol'
import { SqliteSessionStore, type ServiceSessionStore } from './session-store.js'
import type { SsoUser } from './types.js'

/** How long a processed event id is remembered, in ms. Gateways retry for less. */
export const EVENT_ID_RETENTION = 7 * 24 * 60 * 60_000

/** The fields this plugin keeps in a session. */
export interface ServiceSessionFields {
  /** Username, set at sign-in. Indexed by the store. */
  user?: string
  /** The gateway SSO session the sign-in came from. Indexed by the store. */
  sso?: string
  /** The account as the gateway described it at sign-in. */
  account?: SsoAccount
  createdAt?: number
  seenAt?: number
  endsAt?: number
  /** When the user last entered their password at the gateway (ms), if the gateway said. */
  authTime?: number
  /**
   * The gateway's clock when it vouched for this sign-in (`issued_at` of `/sso/get/`): a
   * `deauthenticate` issued before it does not end this session. Read by the session store.
   */
  issuedAt?: number
  /** A sign-in in progress, bound to this browser session. */
  ssoRequest?: { token: string, next: string, prompt?: 'none' | 'login', startedAt: number }
  /** When a passive check (`prompt=none`) came back anonymous in this browser session (ms). */
  passiveChecked?: number
  /** When the gateway was last told this SSO session is in use here (keep-alive). */
  ssoTouchedAt?: number
}

declare module 'fastify' {
  /** The fields fastify-sso-service keeps in a session (`request.session`). */
  interface Session extends ServiceSessionFields {}
}

/** The request's session, with this plugin's fields typed. */
export function sessionOf (request: FastifyRequest): ServiceSessionFields {
  return request.session
}

/**
 * Everything the service keeps: its sessions (`store`), the event ids it applied, the account
 * versions and known accounts. SQLite (`ServiceDatabase`, the default) or Redis
 * (`RedisServiceStore`, shared by several processes).
 */
export interface ServiceState {
  readonly store: ServiceSessionStore
  /** Whether an event with this webhook id was applied already. */
  isProcessed: (id: string) => Promise<boolean>
  /** The webhook timestamp (s) of the last `update_account` applied for a user, or -1. */
  lastAccountTimestamp: (username: string) => Promise<number>
  /** Records an applied event: its id, and the webhook timestamp it brings the named accounts to. */
  recordEvent: (id: string | null, usernames?: readonly string[], timestamp?: number | null, now?: number) => Promise<void>
  /** The username last seen for a gateway user id, or null. */
  usernameOf: (userId: string) => Promise<string | null>
  /** Remembers (or forgets, with null) the username of a gateway user id. */
  rememberUser: (userId: string, username: string | null) => Promise<void>
  /** The account as the gateway's events last described it, or null. */
  lastAccount: (username: string) => Promise<SsoAccount | null>
  /** `lastAccount`, or the defaults of an account no event described (active, no flags). */
  knownAccount: (username: string) => Promise<SsoAccount>
  /** Moves the remembered account to its new username, atomically. */
  renameAccount: (oldUsername: string, username: string) => Promise<void>
  /** Remembers the account an event delivered (or forgets it, with null). */
  rememberAccount: (username: string, account: SsoAccount | null) => Promise<void>
  /** Deletes expired sessions and old event ids; resolves to how many sessions. */
  prune: (now?: number) => Promise<number>
  close: () => void
}

/** The SQLite database: sessions (indexed by user and SSO session) and event bookkeeping. */
export class ServiceDatabase implements ServiceState {
  readonly db: SqliteDatabase
  readonly store: SqliteSessionStore
  readonly #isProcessed: Statement<[string]>
  readonly #lastTimestamp: Statement<[string]>
  readonly #recordId: Statement<[string, number]>
  readonly #recordTimestamp: Statement<[string, number]>
  readonly #pruneIds: Statement<[number]>
  readonly #usernameOf: Statement<[string]>
  readonly #rememberUser: Statement<[string, string]>
  readonly #forgetUser: Statement<[string]>
  readonly #getAccount: Statement<[string]>
  readonly #putAccount: Statement<[string, string]>
  readonly #dropAccount: Statement<[string]>

  constructor (file: string) {
    this.db = new Database(file)
    this.db.pragma('journal_mode = WAL')
    // As the gateway's store: in WAL mode a commit then waits for no fsync (about 1.9 ms of
    // blocked event loop each on our machines, several per sign-in). A crash of the process
    // loses nothing; a power cut at most the last commits (sessions, processed event ids).
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('busy_timeout = 5000')
    this.store = new SqliteSessionStore({ db: this.db })
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS sso_processed_events (
        id TEXT PRIMARY KEY,
        processed_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS sso_processed_events_at ON sso_processed_events (processed_at);
      CREATE TABLE IF NOT EXISTS sso_account_versions (
        username TEXT PRIMARY KEY,
        event_timestamp INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS sso_users (
        user_id TEXT PRIMARY KEY,
        username TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS sso_accounts (
        username TEXT PRIMARY KEY,
        account TEXT NOT NULL
      ) WITHOUT ROWID;
    `)
    this.#getAccount = this.db.prepare('SELECT account FROM sso_accounts WHERE username = ?')
    this.#putAccount = this.db.prepare(`INSERT INTO sso_accounts (username, account) VALUES (?, ?)
      ON CONFLICT (username) DO UPDATE SET account = excluded.account`)
    this.#dropAccount = this.db.prepare('DELETE FROM sso_accounts WHERE username = ?')
    this.#usernameOf = this.db.prepare('SELECT username FROM sso_users WHERE user_id = ?')
    this.#rememberUser = this.db.prepare(`INSERT INTO sso_users (user_id, username) VALUES (?, ?)
      ON CONFLICT (user_id) DO UPDATE SET username = excluded.username`)
    this.#forgetUser = this.db.prepare('DELETE FROM sso_users WHERE user_id = ?')
    this.#isProcessed = this.db.prepare('SELECT 1 FROM sso_processed_events WHERE id = ?')
    this.#lastTimestamp = this.db.prepare('SELECT event_timestamp AS ts FROM sso_account_versions WHERE username = ?')
    this.#recordId = this.db.prepare('INSERT OR IGNORE INTO sso_processed_events (id, processed_at) VALUES (?, ?)')
    this.#recordTimestamp = this.db.prepare(`INSERT INTO sso_account_versions (username, event_timestamp) VALUES (?, ?)
      ON CONFLICT (username) DO UPDATE SET event_timestamp = max(event_timestamp, excluded.event_timestamp)`)
    this.#pruneIds = this.db.prepare('DELETE FROM sso_processed_events WHERE processed_at < ?')
  }

  /** Whether an event with this webhook id was applied already. */
  async isProcessed (id: string): Promise<boolean> {
    return this.#isProcessed.get(id) !== undefined
  }

  /** The webhook timestamp (s) of the last `update_account` applied for a user, or -1. */
  async lastAccountTimestamp (username: string): Promise<number> {
    const row = this.#lastTimestamp.get(username) as { ts: number } | undefined
    return row?.ts ?? -1
  }

  /**
   * Records an applied event in one transaction: its id, and the webhook timestamp
   * it brings the named accounts to (an older `update_account` for them is then ignored).
   */
  async recordEvent (id: string | null, usernames: readonly string[] = [], timestamp: number | null = null, now: number = Date.now()): Promise<void> {
    this.db.transaction(() => {
      if (id !== null) this.#recordId.run(id, now)
      if (timestamp !== null) for (const username of usernames) this.#recordTimestamp.run(username, timestamp)
    })()
  }

  /** The username last seen for a gateway user id, or null. */
  async usernameOf (userId: string): Promise<string | null> {
    return (this.#usernameOf.get(userId) as { username: string } | undefined)?.username ?? null
  }

  /** Remembers (or forgets, with null) the username of a gateway user id. */
  async rememberUser (userId: string, username: string | null): Promise<void> {
    if (username === null) this.#forgetUser.run(userId)
    else this.#rememberUser.run(userId, username)
  }

  /**
   * The account as the gateway's events last described it, or null. A django-sso gateway's
   * `/sso/get/` carries no flags: a sign-in through it takes them from here rather than
   * overwriting what `update_account` delivered with defaults the gateway never sent.
   */
  async lastAccount (username: string): Promise<SsoAccount | null> {
    return this.#lastAccount(username)
  }

  #lastAccount (username: string): SsoAccount | null {
    const row = this.#getAccount.get(username) as { account: string } | undefined
    return row === undefined ? null : JSON.parse(row.account) as SsoAccount
  }

  /** `lastAccount`, or the defaults of an account no event described (active, no flags). */
  async knownAccount (username: string): Promise<SsoAccount> {
    return await this.lastAccount(username) ?? { username, is_active: true, is_staff: false, is_superuser: false }
  }

  /** Moves the remembered account to its new username, in one transaction (a crash keeps it under one name). */
  async renameAccount (oldUsername: string, username: string): Promise<void> {
    this.db.transaction(() => {
      const known = this.#lastAccount(oldUsername)
      if (known === null) return
      this.#dropAccount.run(oldUsername)
      this.#putAccount.run(username, JSON.stringify({ ...known, username }))
    })()
  }

  /** Remembers the account an event delivered (or forgets it, with null). */
  async rememberAccount (username: string, account: SsoAccount | null): Promise<void> {
    if (account === null) this.#dropAccount.run(username)
    else this.#putAccount.run(username, JSON.stringify(account))
  }

  /** Deletes expired sessions and old event ids. */
  async prune (now: number = Date.now()): Promise<number> {
    const pruned = await this.store.prune(now)
    this.#pruneIds.run(now - EVENT_ID_RETENTION)
    return pruned
  }

  close (): void {
    this.db.close()
  }
}

/** A session after sign-in. */
export type SignedInSession = ServiceSessionFields & { user: string, account: SsoAccount }

/** The `request.ssoUser` of a signed-in session. */
export function userFromSession (session: SignedInSession): SsoUser {
  const { username: _u, user_id: userId, is_active: isActive, is_staff: isStaff, is_superuser: isSuperuser, email, display_name: displayName, ...attributes } = session.account
  return {
    username: session.user,
    isActive,
    isStaff,
    isSuperuser,
    email: typeof email === 'string' ? email : null,
    displayName: typeof displayName === 'string' ? displayName : null,
    attributes,
    ssoSession: session.sso ?? null,
    authTime: session.authTime ?? null,
    userId: typeof userId === 'string' ? userId : null
  }
}

/**
 * onRequest hook: enforces the idle and absolute lifetimes server-side and sets
 * `request.ssoUser` (and `request.ssoPassiveChecked`). An expired session is destroyed and the request is anonymous.
 */
export function sessionLifetimeHook (lifetime: SessionLifetime, now: () => number = Date.now,
  keepAlive?: { interval: number, send: (ssoSession: string, request: FastifyRequest) => void }): onRequestAsyncHookHandler {
  return async function ssoSessionLifetime (request) {
    const session = sessionOf(request)
    if (session.passiveChecked !== undefined) request.ssoPassiveChecked = true
    if (typeof session.user !== 'string' && session.ssoRequest === undefined) return
    const t = now()
    const state = checkSessionLifetime(session, lifetime, t)
    if (state === 'expired') {
      if (typeof session.user === 'string') request.log.info({ audit: 'session_expired', user: session.user }, 'session expired')
      await request.session.regenerate()
      return
    }
    if (state === 'touch') session.seenAt = t
    if (typeof session.user === 'string' && session.account !== undefined) request.ssoUser = userFromSession(session as SignedInSession)
    // A session with `sso` was made at sign-in, so it has `createdAt`.
    if (keepAlive !== undefined && typeof session.sso === 'string' && t - (session.ssoTouchedAt ?? session.createdAt as number) >= keepAlive.interval) {
      session.ssoTouchedAt = t
      keepAlive.send(session.sso, request)
    }
  }
}
