import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import { SqliteSessionStore, type SessionIndex, type StoredSession } from 'fastify-sso-protocol'
import { errors } from '../errors.js'
import type {
  DeliveryStatus, GatewayStore, NewOutboxEvent, OutboxEvent, RequestTokenRecord, ServiceRecord, TokenAuthentication, UserPatch, UserRecord
} from './store.js'

/**
 * Versioned migrations, applied in order at startup inside one transaction each.
 * Never edit a released entry: append a new one.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id TEXT PRIMARY KEY,
     username TEXT NOT NULL UNIQUE,
     password_hash TEXT,
     is_active INTEGER NOT NULL,
     is_staff INTEGER NOT NULL,
     is_superuser INTEGER NOT NULL,
     email TEXT,
     display_name TEXT,
     attributes TEXT NOT NULL DEFAULT '{}',
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE services (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     base_url TEXT NOT NULL,
     event_url TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     signing_secret TEXT NOT NULL,
     django_token TEXT,
     protocol TEXT NOT NULL,
     enabled INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE request_tokens (
     hash TEXT PRIMARY KEY,
     service_id TEXT NOT NULL REFERENCES services(id),
     next_url TEXT NOT NULL,
     status TEXT NOT NULL,
     user_id TEXT,
     sso_session TEXT,
     expires_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX request_tokens_expires ON request_tokens (expires_at);
   CREATE TABLE service_logins (
     service_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     last_at INTEGER NOT NULL,
     PRIMARY KEY (service_id, user_id)
   ) WITHOUT ROWID;
   CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     service_id TEXT NOT NULL,
     user_key TEXT NOT NULL,
     payload TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'pending',
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     lease_until INTEGER,
     last_error TEXT,
     failing_since INTEGER,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX outbox_due ON outbox (status, next_attempt_at) WHERE status = 'pending';
   CREATE INDEX outbox_order ON outbox (service_id, user_key, seq) WHERE status = 'pending';`,
  // 2: services learn when the gateway session behind a sign-in ends, so theirs never outlive it.
  'ALTER TABLE request_tokens ADD COLUMN session_ends_at INTEGER;'
]

interface UserRow {
  id: string
  username: string
  password_hash: string | null
  is_active: number
  is_staff: number
  is_superuser: number
  email: string | null
  display_name: string | null
  attributes: string
  created_at: number
  updated_at: number
}

interface ServiceRow {
  id: string
  name: string
  base_url: string
  event_url: string
  token_hash: string
  signing_secret: string
  django_token: string | null
  protocol: ServiceRecord['protocol']
  enabled: number
  created_at: number
}

interface TokenRow {
  hash: string
  service_id: string
  next_url: string
  status: RequestTokenRecord['status']
  user_id: string | null
  sso_session: string | null
  session_ends_at: number | null
  expires_at: number
  created_at: number
}

interface OutboxRow {
  seq: number
  id: string
  service_id: string
  user_key: string
  payload: string
  status: OutboxEvent['status']
  attempts: number
  next_attempt_at: number
  last_error: string | null
  created_at: number
}

const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  passwordHash: r.password_hash,
  isActive: r.is_active === 1,
  isStaff: r.is_staff === 1,
  isSuperuser: r.is_superuser === 1,
  email: r.email,
  displayName: r.display_name,
  attributes: JSON.parse(r.attributes) as Record<string, unknown>,
  createdAt: r.created_at,
  updatedAt: r.updated_at
})

const toService = (r: ServiceRow): ServiceRecord => ({
  id: r.id,
  name: r.name,
  baseUrl: r.base_url,
  eventUrl: r.event_url,
  tokenHash: r.token_hash,
  signingSecret: r.signing_secret,
  djangoToken: r.django_token,
  protocol: r.protocol,
  enabled: r.enabled === 1,
  createdAt: r.created_at
})

const toToken = (r: TokenRow): RequestTokenRecord => ({
  hash: r.hash,
  serviceId: r.service_id,
  nextUrl: r.next_url,
  status: r.status,
  userId: r.user_id,
  ssoSession: r.sso_session,
  sessionEndsAt: r.session_ends_at,
  expiresAt: r.expires_at,
  createdAt: r.created_at
})

const toEvent = (r: OutboxRow): OutboxEvent => ({
  id: r.id,
  seq: r.seq,
  serviceId: r.service_id,
  userKey: r.user_key,
  payload: r.payload,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  createdAt: r.created_at
})

const bool = (v: boolean): number => (v ? 1 : 0)

function isUniqueViolation (err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}

function prepareStatements (db: Db) {
  const p = (sql: string): Statement => db.prepare(sql)
  return {
    insertUser: p(`INSERT INTO users (id, username, password_hash, is_active, is_staff, is_superuser, email, display_name, attributes, created_at, updated_at)
      VALUES (@id, @username, @password_hash, @is_active, @is_staff, @is_superuser, @email, @display_name, @attributes, @created_at, @updated_at)`),
    userById: p('SELECT * FROM users WHERE id = ?'),
    userByName: p('SELECT * FROM users WHERE username = ?'),
    updateUser: p(`UPDATE users SET password_hash = @password_hash, is_active = @is_active, is_staff = @is_staff,
      is_superuser = @is_superuser, email = @email, display_name = @display_name, attributes = @attributes, updated_at = @updated_at
      WHERE id = @id`),
    insertService: p(`INSERT INTO services (id, name, base_url, event_url, token_hash, signing_secret, django_token, protocol, enabled, created_at)
      VALUES (@id, @name, @base_url, @event_url, @token_hash, @signing_secret, @django_token, @protocol, @enabled, @created_at)`),
    serviceById: p('SELECT * FROM services WHERE id = ?'),
    serviceByName: p('SELECT * FROM services WHERE name = ?'),
    serviceByToken: p('SELECT * FROM services WHERE token_hash = ?'),
    services: p('SELECT * FROM services ORDER BY created_at, name'),
    updateService: p(`UPDATE services SET base_url = @base_url, event_url = @event_url, token_hash = @token_hash,
      signing_secret = @signing_secret, django_token = @django_token, enabled = @enabled WHERE id = @id`),
    insertToken: p(`INSERT INTO request_tokens (hash, service_id, next_url, status, expires_at, created_at)
      VALUES (?, ?, ?, 'pending', ?, ?)`),
    token: p('SELECT * FROM request_tokens WHERE hash = ? AND expires_at > ?'),
    authenticate: p(`UPDATE request_tokens SET status = 'authenticated', user_id = ?, sso_session = ?, session_ends_at = ?, expires_at = ?
      WHERE hash = ? AND status = 'pending' AND expires_at > ? RETURNING service_id`),
    recordLogin: p(`INSERT INTO service_logins (service_id, user_id, last_at) VALUES (?, ?, ?)
      ON CONFLICT (service_id, user_id) DO UPDATE SET last_at = excluded.last_at`),
    consume: p(`UPDATE request_tokens SET status = 'used'
      WHERE hash = ? AND service_id = ? AND status = 'authenticated' AND expires_at > ? RETURNING *`),
    burn: p(`UPDATE request_tokens SET status = 'used' WHERE hash = ?`),
    pruneTokens: p('DELETE FROM request_tokens WHERE expires_at <= ?'),
    signedIn: p('SELECT 1 FROM service_logins WHERE service_id = ? AND user_id = ?'),
    insertEvent: p(`INSERT INTO outbox (id, service_id, user_key, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
    claim: p(`SELECT * FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= @now
      AND (o.lease_until IS NULL OR o.lease_until <= @now)
      AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.service_id = o.service_id
        AND e.user_key = o.user_key AND e.seq < o.seq)
      ORDER BY o.seq LIMIT @limit`),
    lease: p('UPDATE outbox SET lease_until = ? WHERE id = ?'),
    expedite: p(`UPDATE outbox SET next_attempt_at = @now WHERE status = 'pending' AND service_id = @service AND user_key = @user
      AND next_attempt_at > @now AND (lease_until IS NULL OR lease_until <= @now)`),
    pendingOf: p(`SELECT id FROM outbox WHERE status = 'pending' AND service_id = ? AND user_key = ? ORDER BY seq`),
    complete: p(`UPDATE outbox SET status = 'delivered', lease_until = NULL, attempts = attempts + 1, last_error = NULL, failing_since = NULL WHERE id = ?`),
    fail: p(`UPDATE outbox SET status = CASE WHEN @next IS NULL THEN 'dead' ELSE 'pending' END,
      next_attempt_at = COALESCE(@next, next_attempt_at), lease_until = NULL, attempts = attempts + 1,
      last_error = @error, failing_since = COALESCE(failing_since, @now) WHERE id = @id`),
    release: p('UPDATE outbox SET lease_until = NULL WHERE id = ?'),
    eventsByStatus: p('SELECT * FROM outbox WHERE status = ? ORDER BY seq LIMIT ?'),
    replay: p(`UPDATE outbox SET status = 'pending', next_attempt_at = ?, lease_until = NULL WHERE id = ? AND status = 'dead'`),
    deliveryStatus: p(`SELECT service_id,
        SUM(status = 'pending') AS pending, SUM(status = 'dead') AS dead,
        MIN(CASE WHEN status = 'pending' THEN failing_since END) AS failing_since
      FROM outbox WHERE status != 'delivered' GROUP BY service_id ORDER BY service_id`)
  }
}

export interface SqliteGatewayStoreOptions {
  /** SQLite file path, or ':memory:'. @default 'sso-gateway.sqlite' */
  filename?: string
  /** How long a write waits for another writer before failing with 503, in ms. @default 5000 */
  busyTimeout?: number
}

/**
 * The default gateway store: one SQLite file through better-sqlite3, in WAL mode,
 * with versioned migrations applied when it opens. Methods are async to honour the
 * store contract; each runs synchronously inside, which SQLite serialises.
 */
export class SqliteGatewayStore implements GatewayStore {
  /** The open database, for the session store sharing the file. */
  readonly db: Db
  readonly #st: ReturnType<typeof prepareStatements>

  constructor (options: SqliteGatewayStoreOptions = {}) {
    this.db = new Database(options.filename ?? 'sso-gateway.sqlite', { timeout: options.busyTimeout ?? 5000 })
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('foreign_keys = ON')
    this.#migrate()
    this.#st = prepareStatements(this.db)
  }

  #migrate (): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)')
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }
    const current = row.v ?? 0
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[version - 1] as string)
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now())
      }).immediate()
    }
  }

  /** The schema version this database is at. */
  get schemaVersion (): number {
    return (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v
  }

  /** A @fastify/session store for gateway sessions, in the same file. */
  createSessionStore (index: (session: StoredSession) => SessionIndex): SqliteSessionStore {
    return new SqliteSessionStore({ db: this.db, table: 'gateway_sessions', index })
  }

  async createUser (user: Omit<UserRecord, 'createdAt' | 'updatedAt'>): Promise<UserRecord> {
    const now = Date.now()
    try {
      this.#st.insertUser.run({
        id: user.id,
        username: user.username,
        password_hash: user.passwordHash,
        is_active: bool(user.isActive),
        is_staff: bool(user.isStaff),
        is_superuser: bool(user.isSuperuser),
        email: user.email,
        display_name: user.displayName,
        attributes: JSON.stringify(user.attributes),
        created_at: now,
        updated_at: now
      })
    } catch (err) {
      if (isUniqueViolation(err)) throw new errors.USER_EXISTS(user.username)
      throw err
    }
    return { ...user, createdAt: now, updatedAt: now }
  }

  async getUserById (id: string): Promise<UserRecord | null> {
    const row = this.#st.userById.get(id) as UserRow | undefined
    return row === undefined ? null : toUser(row)
  }

  async getUserByUsername (username: string): Promise<UserRecord | null> {
    const row = this.#st.userByName.get(username) as UserRow | undefined
    return row === undefined ? null : toUser(row)
  }

  async updateUser (id: string, patch: UserPatch, events?: (user: UserRecord) => NewOutboxEvent[]): Promise<UserRecord | null> {
    return this.db.transaction((): UserRecord | null => {
      const row = this.#st.userById.get(id) as UserRow | undefined
      if (row === undefined) return null
      const user: UserRecord = { ...toUser(row), ...patch, updatedAt: Date.now() }
      this.#st.updateUser.run({
        id,
        password_hash: user.passwordHash,
        is_active: bool(user.isActive),
        is_staff: bool(user.isStaff),
        is_superuser: bool(user.isSuperuser),
        email: user.email,
        display_name: user.displayName,
        attributes: JSON.stringify(user.attributes),
        updated_at: user.updatedAt
      })
      if (events !== undefined) this.#insertEvents(events(user))
      return user
    }).immediate()
  }

  async createService (service: Omit<ServiceRecord, 'createdAt'>): Promise<ServiceRecord> {
    const createdAt = Date.now()
    try {
      this.#st.insertService.run({
        id: service.id,
        name: service.name,
        base_url: service.baseUrl,
        event_url: service.eventUrl,
        token_hash: service.tokenHash,
        signing_secret: service.signingSecret,
        django_token: service.djangoToken,
        protocol: service.protocol,
        enabled: bool(service.enabled),
        created_at: createdAt
      })
    } catch (err) {
      if (isUniqueViolation(err)) throw new errors.SERVICE_EXISTS(service.name)
      throw err
    }
    return { ...service, createdAt }
  }

  async getServiceById (id: string): Promise<ServiceRecord | null> {
    const row = this.#st.serviceById.get(id) as ServiceRow | undefined
    return row === undefined ? null : toService(row)
  }

  async getServiceByName (name: string): Promise<ServiceRecord | null> {
    const row = this.#st.serviceByName.get(name) as ServiceRow | undefined
    return row === undefined ? null : toService(row)
  }

  async getServiceByTokenHash (tokenHash: string): Promise<ServiceRecord | null> {
    const row = this.#st.serviceByToken.get(tokenHash) as ServiceRow | undefined
    return row === undefined ? null : toService(row)
  }

  async listServices (): Promise<ServiceRecord[]> {
    return (this.#st.services.all() as ServiceRow[]).map(toService)
  }

  async updateService (id: string, patch: Partial<Pick<ServiceRecord, 'baseUrl' | 'eventUrl' | 'tokenHash' | 'signingSecret' | 'djangoToken' | 'enabled'>>): Promise<ServiceRecord | null> {
    return this.db.transaction((): ServiceRecord | null => {
      const row = this.#st.serviceById.get(id) as ServiceRow | undefined
      if (row === undefined) return null
      const s: ServiceRecord = { ...toService(row), ...patch }
      this.#st.updateService.run({
        id,
        base_url: s.baseUrl,
        event_url: s.eventUrl,
        token_hash: s.tokenHash,
        signing_secret: s.signingSecret,
        django_token: s.djangoToken,
        enabled: bool(s.enabled)
      })
      return s
    }).immediate()
  }

  async createRequestToken (t: Omit<RequestTokenRecord, 'status' | 'userId' | 'ssoSession' | 'sessionEndsAt'>): Promise<void> {
    this.#st.insertToken.run(t.hash, t.serviceId, t.nextUrl, t.expiresAt, t.createdAt)
  }

  async getRequestToken (hash: string, now: number): Promise<RequestTokenRecord | null> {
    const row = this.#st.token.get(hash, now) as TokenRow | undefined
    return row === undefined ? null : toToken(row)
  }

  async authenticateRequestToken (hash: string, by: TokenAuthentication, now: number): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const row = this.#st.authenticate.get(by.userId, by.ssoSession, by.sessionEndsAt, by.expiresAt, hash, now) as { service_id: string } | undefined
      if (row === undefined) return false
      this.#st.recordLogin.run(row.service_id, by.userId, now)
      return true
    }).immediate()
  }

  async consumeRequestToken (hash: string, serviceId: string, now: number): Promise<RequestTokenRecord | null> {
    const row = this.#st.consume.get(hash, serviceId, now) as TokenRow | undefined
    return row === undefined ? null : toToken(row)
  }

  async burnRequestToken (hash: string): Promise<void> {
    this.#st.burn.run(hash)
  }

  async pruneRequestTokens (now: number): Promise<number> {
    return this.#st.pruneTokens.run(now).changes
  }

  async hasSignedIn (serviceId: string, userId: string): Promise<boolean> {
    return this.#st.signedIn.get(serviceId, userId) !== undefined
  }

  #insertEvents (events: NewOutboxEvent[]): void {
    const now = Date.now()
    for (const e of events) this.#st.insertEvent.run(e.id, e.serviceId, e.userKey, e.payload, now, now)
  }

  async enqueueEvents (events: NewOutboxEvent[]): Promise<void> {
    this.db.transaction(() => this.#insertEvents(events)).immediate()
  }

  async claimEvents (now: number, leaseMs: number, limit: number, onlyIds?: string[]): Promise<OutboxEvent[]> {
    return this.db.transaction((): OutboxEvent[] => {
      // The ordering rule (no earlier pending event for the same service and user) is in the query.
      const rows = (this.#st.claim.all({ now, limit: onlyIds === undefined ? limit : -1 }) as OutboxRow[])
        .filter((r) => onlyIds === undefined || onlyIds.includes(r.id))
        .slice(0, limit)
      for (const r of rows) this.#st.lease.run(now + leaseMs, r.id)
      return rows.map(toEvent)
    }).immediate()
  }

  async expediteEvents (serviceId: string, userKey: string, now: number): Promise<string[]> {
    return this.db.transaction((): string[] => {
      this.#st.expedite.run({ now, service: serviceId, user: userKey })
      return (this.#st.pendingOf.all(serviceId, userKey) as Array<{ id: string }>).map((r) => r.id)
    }).immediate()
  }

  async completeEvent (id: string): Promise<void> {
    this.#st.complete.run(id)
  }

  async failEvent (id: string, error: string, nextAttemptAt: number | null): Promise<void> {
    this.#st.fail.run({ id, error, next: nextAttemptAt, now: Date.now() })
  }

  async releaseEvent (id: string): Promise<void> {
    this.#st.release.run(id)
  }

  async listEvents (status: OutboxEvent['status'], limit: number): Promise<OutboxEvent[]> {
    return (this.#st.eventsByStatus.all(status, limit) as OutboxRow[]).map(toEvent)
  }

  async replayEvent (id: string, now: number): Promise<boolean> {
    return this.#st.replay.run(now, id).changes === 1
  }

  async deliveryStatus (): Promise<DeliveryStatus[]> {
    return (this.#st.deliveryStatus.all() as Array<{ service_id: string, pending: number, dead: number, failing_since: number | null }>)
      .map((r) => ({ serviceId: r.service_id, pending: r.pending, dead: r.dead, failingSince: r.failing_since }))
  }

  async close (): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
