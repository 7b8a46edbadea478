import type { Database, Statement } from 'better-sqlite3'

/** What a session is indexed by, so logging a user out never scans. */
export interface SessionIndex {
  /** The user the session belongs to, or null for an anonymous session. */
  user: string | null
  /** The gateway SSO session the session was born from, if any. */
  ssoSession: string | null
  /** When the session ends at the latest, in ms since the epoch. */
  expiresAt: number
}

/** What @fastify/session hands to a store: any JSON-serialisable object. */
export type StoredSession = Record<string, unknown>

export interface SqliteSessionStoreOptions {
  /** An open better-sqlite3 database. The store creates its table if needed. */
  db: Database
  /** Table name. @default 'sessions' */
  table?: string
  /** Reads the index columns out of a session being saved. */
  index: (session: StoredSession) => SessionIndex
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** `$.a.b`: the JSON paths `rekeyUser` accepts (plain object keys). */
const JSON_PATH = /^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/

type Callback = (err?: unknown) => void
type GetCallback = (err: unknown, session?: StoredSession | null) => void

/**
 * A persistent @fastify/session store in SQLite with indexes by user and by SSO
 * session: `destroyByUser` and `destroyBySsoSession` cost one index lookup
 * whatever the number of sessions stored. Expired sessions are never returned
 * and are deleted by `prune()` or `takeExpired()`.
 */
export class SqliteSessionStore {
  readonly #db: Database
  readonly #index: SqliteSessionStoreOptions['index']
  readonly #now: () => number
  readonly #get: Statement<[string]>
  readonly #set: Statement<[string, string, number, string | null, string | null]>
  readonly #destroy: Statement<[string]>
  readonly #byUser: Statement<[string]>
  readonly #bySso: Statement<[string]>
  readonly #byUserBefore: Statement<[string, number]>
  readonly #bySsoBefore: Statement<[string, number]>
  readonly #countUser: Statement<[string, number]>
  readonly #listUser: Statement<[string, number]>
  readonly #prune: Statement<[number]>
  readonly #takeExpired: Statement<[number, number]>
  readonly #touchSso: Statement<[{ sso: string, now: number, idle: number, absolute: number }]>
  readonly #table: string
  readonly #rekey = new Map<string, Statement<unknown[]>>()

  constructor (options: SqliteSessionStoreOptions) {
    const table = options.table ?? 'sessions'
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new TypeError(`invalid session table name: ${JSON.stringify(table)}`)
    this.#db = options.db
    this.#table = table
    this.#index = options.index
    this.#now = options.now ?? Date.now
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS ${table} (
        sid TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        user_key TEXT,
        sso_session TEXT
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS ${table}_user ON ${table} (user_key) WHERE user_key IS NOT NULL;
      CREATE INDEX IF NOT EXISTS ${table}_sso ON ${table} (sso_session) WHERE sso_session IS NOT NULL;
      CREATE INDEX IF NOT EXISTS ${table}_expires ON ${table} (expires_at);
    `)
    this.#get = this.#db.prepare(`SELECT data, expires_at FROM ${table} WHERE sid = ?`)
    this.#set = this.#db.prepare(`INSERT INTO ${table} (sid, data, expires_at, user_key, sso_session) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at,
        user_key = excluded.user_key, sso_session = excluded.sso_session`)
    this.#destroy = this.#db.prepare(`DELETE FROM ${table} WHERE sid = ?`)
    this.#byUser = this.#db.prepare(`DELETE FROM ${table} WHERE user_key = ?`)
    this.#bySso = this.#db.prepare(`DELETE FROM ${table} WHERE sso_session = ?`)
    // A session without `issuedAt` (from a gateway that does not say when) always ends.
    const issuedBefore = "(json_extract(data, '$.issuedAt') IS NULL OR json_extract(data, '$.issuedAt') <= ?)"
    this.#byUserBefore = this.#db.prepare(`DELETE FROM ${table} WHERE user_key = ? AND ${issuedBefore}`)
    this.#bySsoBefore = this.#db.prepare(`DELETE FROM ${table} WHERE sso_session = ? AND ${issuedBefore}`)
    this.#countUser = this.#db.prepare(`SELECT count(*) AS n FROM ${table} WHERE user_key = ? AND expires_at > ?`)
    this.#listUser = this.#db.prepare(`SELECT data FROM ${table} WHERE user_key = ? AND expires_at > ?`)
    this.#prune = this.#db.prepare(`DELETE FROM ${table} WHERE expires_at <= ?`)
    this.#touchSso = this.#db.prepare(`UPDATE ${table} SET data = json_set(data, '$.seenAt', @now),
      expires_at = MIN(@now + @idle, COALESCE(json_extract(data, '$.createdAt') + @absolute, @now + @idle))
      WHERE sso_session = @sso AND expires_at > @now`)
    this.#takeExpired = this.#db.prepare(`DELETE FROM ${table} WHERE sid IN
      (SELECT sid FROM ${table} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING user_key, sso_session`)
  }

  /** @fastify/session store API: reads a live session, or null. */
  get (sid: string, callback: GetCallback): void {
    let session: StoredSession | null = null
    try {
      // An expired row is not returned, and not deleted here either: `takeExpired` (or
      // `prune`) removes it, so its owner can still learn that the session ended.
      const row = this.#get.get(sid) as { data: string, expires_at: number } | undefined
      if (row !== undefined && row.expires_at > this.#now()) session = JSON.parse(row.data) as StoredSession
    } catch (err) {
      callback(err)
      return
    }
    callback(null, session)
  }

  /** @fastify/session store API: saves a session with its index columns. */
  set (sid: string, session: StoredSession, callback: Callback): void {
    try {
      const index = this.#index(session)
      this.#set.run(sid, JSON.stringify(session), index.expiresAt, index.user, index.ssoSession)
    } catch (err) {
      callback(err)
      return
    }
    callback()
  }

  /** @fastify/session store API: deletes one session. */
  destroy (sid: string, callback: Callback): void {
    try {
      this.#destroy.run(sid)
    } catch (err) {
      callback(err)
      return
    }
    callback()
  }

  /**
   * Ends every session of a user; returns how many ended. One index lookup. With
   * `issuedBefore` (ms, the gateway's clock), a session whose `issuedAt` is later survives:
   * it was vouched for after the sign-out was issued, so a late event cannot end it.
   */
  destroyByUser (user: string, issuedBefore?: number): number {
    return (issuedBefore === undefined ? this.#byUser.run(user) : this.#byUserBefore.run(user, issuedBefore)).changes
  }

  /** Ends every session born from one SSO session (with `issuedBefore`: as `destroyByUser`); returns how many ended. */
  destroyBySsoSession (ssoSession: string, issuedBefore?: number): number {
    return (issuedBefore === undefined ? this.#bySso.run(ssoSession) : this.#bySsoBefore.run(ssoSession, issuedBefore)).changes
  }

  /**
   * Moves every session of `oldUser` to `newUser` (a rename at the gateway): the
   * index column and, in each session's data, the JSON fields at `dataPaths`
   * (`$.user`, the field `sessionIndexer` reads, by default) become `newUser`.
   * One UPDATE through the user index; returns how many sessions moved.
   */
  rekeyUser (oldUser: string, newUser: string, dataPaths: readonly string[] = ['$.user'], only?: { path: string, value: string }): number {
    if (dataPaths.length === 0 || ![...dataPaths, only?.path ?? '$.x'].every((p) => JSON_PATH.test(p))) {
      throw new TypeError(`invalid JSON paths: ${JSON.stringify(dataPaths)}`)
    }
    const key = `${dataPaths.join(' ')}|${only?.path ?? ''}`
    let statement = this.#rekey.get(key)
    if (statement === undefined) {
      const sets = dataPaths.map(() => '?, ?').join(', ')
      // `only`: sessions that record another value there (another user who held the name) stay put.
      const filter = only === undefined ? '' : ` AND (json_extract(data, '${only.path}') IS NULL OR json_extract(data, '${only.path}') = ?)`
      statement = this.#db.prepare(`UPDATE ${this.#table} SET user_key = ?, data = json_set(data, ${sets}) WHERE user_key = ?${filter}`)
      this.#rekey.set(key, statement)
    }
    return statement.run(newUser, ...dataPaths.flatMap((p) => [p, newUser]), oldUser, ...(only === undefined ? [] : [only.value])).changes
  }

  /** How many live sessions a user has. */
  countByUser (user: string): number {
    return (this.#countUser.get(user, this.#now()) as { n: number }).n
  }

  /** The live sessions of a user. */
  listByUser (user: string): StoredSession[] {
    return (this.#listUser.all(user, this.#now()) as Array<{ data: string }>).map((r) => JSON.parse(r.data) as StoredSession)
  }

  /**
   * Deletes up to `limit` expired sessions and returns their index (user and SSO session),
   * so the caller can tell others that those sessions ended.
   */
  takeExpired (limit: number): Array<{ user: string | null, ssoSession: string | null }> {
    return this.#db.transaction(() => this.#takeExpired.all(this.#now(), limit) as Array<{ user_key: string | null, sso_session: string | null }>)()
      .map((r) => ({ user: r.user_key, ssoSession: r.sso_session }))
  }

  /**
   * Marks every live session of an SSO session as used now (`seenAt`), pushing its expiry to
   * `now + idleTimeout` but never past `createdAt + absoluteTimeout`. Returns how many were live.
   */
  touchBySsoSession (ssoSession: string, now: number, lifetime: { idleTimeout: number, absoluteTimeout: number }): number {
    return this.#touchSso.run({ sso: ssoSession, now, idle: lifetime.idleTimeout, absolute: lifetime.absoluteTimeout }).changes
  }

  /** Deletes expired sessions; returns how many. */
  prune (): number {
    return this.#prune.run(this.#now()).changes
  }
}
