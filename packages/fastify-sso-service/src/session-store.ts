import type { Database, Statement } from 'better-sqlite3'
import type { Session } from 'fastify'
import type { SessionIndex } from 'fastify-sso-protocol'

/**
 * The service's session storage: what @fastify/session needs (`get`, `set`, `destroy`) plus
 * the lookups that make ending a user's sessions cost one index lookup. Every method is
 * async, so a store on a network database can implement it. A session deleted by `destroy`,
 * `destroyByUser` or `destroyBySsoSession` is never written back by a late `set` (a request
 * in flight while the gateway signs its user out does not resurrect it).
 */
export interface ServiceSessionStore {
  /** A live session (not expired at `now`), or null. */
  get: (sid: string, now: number) => Promise<Session | null>
  /** Inserts or replaces a session with its index; writes nothing for a session deleted before. */
  set: (sid: string, session: Session, index: SessionIndex) => Promise<void>
  destroy: (sid: string) => Promise<void>
  /**
   * Ends every session of a user; resolves to how many ended. With `issuedBefore` (ms, the
   * gateway's clock), a session whose `issuedAt` is later survives: it was vouched for after
   * the sign-out was issued, so a late event cannot end it. A session without `issuedAt`
   * (from a gateway that does not say when) always ends.
   */
  destroyByUser: (user: string, issuedBefore?: number) => Promise<number>
  /** Ends every session born from one SSO session (with `issuedBefore`: as `destroyByUser`); resolves to how many ended. */
  destroyBySsoSession: (ssoSession: string, issuedBefore?: number) => Promise<number>
  /**
   * Moves every session of `oldUser` to `newUser` (a rename at the gateway): the index and, in
   * each session's data, the JSON fields at `dataPaths` (`$.user` by default). With `only`,
   * sessions recording another value at `only.path` (another user who held the name) stay put.
   */
  rekeyUser: (oldUser: string, newUser: string, dataPaths?: readonly string[], only?: { path: string, value: string }) => Promise<number>
  /** The live sessions of a user. */
  listByUser: (user: string, now: number) => Promise<Session[]>
  /** Deletes expired sessions, and what it remembers of ended ones past their expiry; resolves to how many sessions. */
  prune: (now: number) => Promise<number>
}

export interface SqliteSessionStoreOptions {
  /** An open better-sqlite3 database. The store creates its tables if needed. */
  db: Database
  /** Table name. @default 'sessions' */
  table?: string
}

/** `$.a.b`: the JSON paths `rekeyUser` accepts (plain object keys). */
export const JSON_PATH = /^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/

/** How long an ended session is remembered at least, in ms (a request in flight is over long before). */
export const ENDED_MIN_MS = 3_600_000

/**
 * The service's default session store, in its SQLite file, indexed by user and by SSO session:
 * `destroyByUser` and `destroyBySsoSession` cost one index lookup whatever the number of
 * sessions stored. Expired sessions are never returned and are deleted by `prune()`.
 */
export class SqliteSessionStore implements ServiceSessionStore {
  readonly #db: Database
  readonly #table: string
  readonly #get: Statement<[string]>
  readonly #set: Statement<[{ sid: string, data: string, expires: number, user: string | null, sso: string | null }]>
  readonly #ends: Array<Statement<[{ where: string, floor: number }]>>
  readonly #deletes: Array<Statement<[string]>>
  readonly #endsBefore: Array<Statement<[{ where: string, floor: number, before: number }]>>
  readonly #deletesBefore: Array<Statement<[string, number]>>
  readonly #listUser: Statement<[string, number]>
  readonly #prune: Statement<[number]>
  readonly #pruneEnded: Statement<[number]>
  readonly #rekey = new Map<string, Statement<unknown[]>>()

  constructor (options: SqliteSessionStoreOptions) {
    const table = options.table ?? 'sessions'
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new TypeError(`invalid session table name: ${JSON.stringify(table)}`)
    this.#db = options.db
    this.#table = table
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
      CREATE TABLE IF NOT EXISTS ${table}_ended (sid TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
    `)
    this.#get = this.#db.prepare(`SELECT data, expires_at FROM ${table} WHERE sid = ?`)
    // Never an insert for a session that ended: a late save of it writes nothing.
    this.#set = this.#db.prepare(`INSERT INTO ${table} (sid, data, expires_at, user_key, sso_session)
      SELECT @sid, @data, @expires, @user, @sso WHERE NOT EXISTS (SELECT 1 FROM ${table}_ended WHERE sid = @sid)
      ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at,
        user_key = excluded.user_key, sso_session = excluded.sso_session`)
    const column = { sid: 'sid', user: 'user_key', sso: 'sso_session' }
    this.#ends = Object.values(column).map((c) => this.#db.prepare(`INSERT INTO ${table}_ended (sid, expires_at)
      SELECT sid, MAX(expires_at, @floor) FROM ${table} WHERE ${c} = @where ON CONFLICT (sid) DO NOTHING`))
    this.#deletes = Object.values(column).map((c) => this.#db.prepare(`DELETE FROM ${table} WHERE ${c} = ?`))
    // With a deauthenticate's `issued_at`: a session without `issuedAt` always ends.
    const issuedBefore = (at: string): string => `(json_extract(data, '$.issuedAt') IS NULL OR json_extract(data, '$.issuedAt') <= ${at})`
    this.#endsBefore = [column.user, column.sso].map((c) => this.#db.prepare(`INSERT INTO ${table}_ended (sid, expires_at)
      SELECT sid, MAX(expires_at, @floor) FROM ${table} WHERE ${c} = @where AND ${issuedBefore('@before')} ON CONFLICT (sid) DO NOTHING`))
    this.#deletesBefore = [column.user, column.sso].map((c) => this.#db.prepare(`DELETE FROM ${table} WHERE ${c} = ? AND ${issuedBefore('?')}`))
    this.#listUser = this.#db.prepare(`SELECT data FROM ${table} WHERE user_key = ? AND expires_at > ?`)
    this.#prune = this.#db.prepare(`DELETE FROM ${table} WHERE expires_at <= ?`)
    this.#pruneEnded = this.#db.prepare(`DELETE FROM ${table}_ended WHERE expires_at <= ?`)
  }

  async get (sid: string, now: number): Promise<Session | null> {
    const row = this.#get.get(sid) as { data: string, expires_at: number } | undefined
    return row !== undefined && row.expires_at > now ? JSON.parse(row.data) as Session : null
  }

  async set (sid: string, session: Session, index: SessionIndex): Promise<void> {
    this.#set.run({ sid, data: JSON.stringify(session), expires: index.expiresAt, user: index.user, sso: index.ssoSession })
  }

  /**
   * Deletes the sessions whose column (0 sid, 1 user, 2 SSO session) is `value`, remembering
   * them as ended; with `issuedBefore`, only those issued at or before it (or without `issuedAt`).
   */
  #end (by: 0 | 1 | 2, value: string, issuedBefore?: number): number {
    const floor = Date.now() + ENDED_MIN_MS
    return this.#db.transaction(() => {
      if (issuedBefore === undefined) {
        (this.#ends[by] as Statement<[{ where: string, floor: number }]>).run({ where: value, floor })
        return (this.#deletes[by] as Statement<[string]>).run(value).changes
      }
      (this.#endsBefore[by - 1] as Statement<[{ where: string, floor: number, before: number }]>).run({ where: value, floor, before: issuedBefore })
      return (this.#deletesBefore[by - 1] as Statement<[string, number]>).run(value, issuedBefore).changes
    }).immediate()
  }

  async destroy (sid: string): Promise<void> {
    this.#end(0, sid)
  }

  async destroyByUser (user: string, issuedBefore?: number): Promise<number> {
    return this.#end(1, user, issuedBefore)
  }

  async destroyBySsoSession (ssoSession: string, issuedBefore?: number): Promise<number> {
    return this.#end(2, ssoSession, issuedBefore)
  }

  async rekeyUser (oldUser: string, newUser: string, dataPaths: readonly string[] = ['$.user'], only?: { path: string, value: string }): Promise<number> {
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

  async listByUser (user: string, now: number): Promise<Session[]> {
    return (this.#listUser.all(user, now) as Array<{ data: string }>).map((r) => JSON.parse(r.data) as Session)
  }

  async prune (now: number): Promise<number> {
    this.#pruneEnded.run(now)
    return this.#prune.run(now).changes
  }
}
