import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import { SqliteSessionStore, type SessionIndex, type SsoPrompt, type StoredSession } from 'fastify-sso-protocol'
import { errors } from '../errors.js'
import { settingOf } from './settings.js'
import type {
  DeliveryStatus, GatewayStore, NewOutboxEvent, OutboxEvent, NewRequestToken, RequestTokenRecord, ServiceAccess, ServiceRecord, ServicePatch, SsoSessionService, TokenAuthentication, UserPatch, UserRecord
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
  'ALTER TABLE request_tokens ADD COLUMN session_ends_at INTEGER;',
  // 3: SSO sessions (which services each reached), passive/forced sign-in, sensitive services.
  `ALTER TABLE request_tokens ADD COLUMN prompt TEXT;
   ALTER TABLE service_logins ADD COLUMN username TEXT;
   ALTER TABLE request_tokens ADD COLUMN auth_at INTEGER;
   ALTER TABLE services ADD COLUMN fresh_login INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE sso_session_services (
     sso_session TEXT NOT NULL,
     service_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     last_at INTEGER NOT NULL,
     PRIMARY KEY (sso_session, service_id)
   ) WITHOUT ROWID;
   CREATE INDEX sso_session_services_user ON sso_session_services (user_id);`,
  // 4: groups, per-service access rules and attribute selection.
  `CREATE TABLE groups (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE group_members (
     group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     PRIMARY KEY (group_name, user_id)
   ) WITHOUT ROWID;
   CREATE INDEX group_members_user ON group_members (user_id);
   ALTER TABLE services ADD COLUMN access TEXT;
   ALTER TABLE services ADD COLUMN fields TEXT;`,
  // 5: the code that binds an authenticated request to the browser that completed it.
  'ALTER TABLE request_tokens ADD COLUMN code_hash TEXT;'
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
  fresh_login: number
  access: string | null
  fields: string | null
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
  prompt: SsoPrompt | null
  auth_at: number | null
  code_hash: string | null
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
  // Rows written before the dialects existed say 'django-sso': that was the 1.x wire.
  protocol: (r.protocol as string) === 'django-sso' ? 'django-sso-1' : r.protocol,
  enabled: r.enabled === 1,
  freshLogin: r.fresh_login === 1,
  access: r.access === null ? null : JSON.parse(r.access) as ServiceAccess,
  fields: r.fields === null ? null : JSON.parse(r.fields) as string[],
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
  prompt: r.prompt,
  authAt: r.auth_at,
  codeHash: r.code_hash,
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

/** The named parameters of the users table's writable columns. */
const userParams = (u: Omit<UserRecord, 'createdAt'>): Record<string, unknown> => ({
  id: u.id,
  username: u.username,
  password_hash: u.passwordHash,
  is_active: bool(u.isActive),
  is_staff: bool(u.isStaff),
  is_superuser: bool(u.isSuperuser),
  email: u.email,
  display_name: u.displayName,
  attributes: JSON.stringify(u.attributes),
  updated_at: u.updatedAt
})

/** The named parameters of the services table's writable columns. */
const serviceParams = (s: Omit<ServiceRecord, 'createdAt'>): Record<string, unknown> => ({
  id: s.id,
  base_url: s.baseUrl,
  event_url: s.eventUrl,
  token_hash: s.tokenHash,
  signing_secret: s.signingSecret,
  django_token: s.djangoToken,
  enabled: bool(s.enabled),
  fresh_login: bool(s.freshLogin),
  access: s.access === null ? null : JSON.stringify(s.access),
  fields: s.fields === null ? null : JSON.stringify(s.fields)
})

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
    updateUser: p(`UPDATE users SET username = @username, password_hash = @password_hash, is_active = @is_active, is_staff = @is_staff,
      is_superuser = @is_superuser, email = @email, display_name = @display_name, attributes = @attributes, updated_at = @updated_at
      WHERE id = @id`),
    insertService: p(`INSERT INTO services (id, name, base_url, event_url, token_hash, signing_secret, django_token, protocol, enabled,
        fresh_login, access, fields, created_at)
      VALUES (@id, @name, @base_url, @event_url, @token_hash, @signing_secret, @django_token, @protocol, @enabled,
        @fresh_login, @access, @fields, @created_at)`),
    serviceById: p('SELECT * FROM services WHERE id = ?'),
    serviceByName: p('SELECT * FROM services WHERE name = ?'),
    serviceByToken: p('SELECT * FROM services WHERE token_hash = ?'),
    services: p('SELECT * FROM services ORDER BY created_at, name'),
    updateService: p(`UPDATE services SET base_url = @base_url, event_url = @event_url, token_hash = @token_hash,
      signing_secret = @signing_secret, django_token = @django_token, enabled = @enabled, fresh_login = @fresh_login,
      access = @access, fields = @fields WHERE id = @id`),
    insertToken: p(`INSERT INTO request_tokens (hash, service_id, next_url, status, prompt, expires_at, created_at)
      VALUES (?, ?, ?, 'pending', ?, ?, ?)`),
    decline: p(`UPDATE request_tokens SET status = 'declined' WHERE hash = ? AND status = 'pending' AND expires_at > ?`),
    spend: p(`UPDATE request_tokens SET status = 'used' WHERE hash = ? AND service_id = ? AND status = 'declined' AND expires_at > ? RETURNING hash`),
    recordSsoService: p(`INSERT INTO sso_session_services (sso_session, service_id, user_id, last_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (sso_session, service_id) DO UPDATE SET last_at = excluded.last_at`),
    ssoServices: p('SELECT service_id, user_id, last_at FROM sso_session_services WHERE sso_session = ? ORDER BY last_at'),
    ssoOfUser: p('SELECT DISTINCT sso_session FROM sso_session_services WHERE user_id = ?'),
    forgetSso: p('DELETE FROM sso_session_services WHERE sso_session = ?'),
    forgetSsoOfUser: p('DELETE FROM sso_session_services WHERE user_id = ?'),
    deleteUser: p('DELETE FROM users WHERE id = ?'),
    insertGroup: p('INSERT INTO groups (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
    deleteGroup: p('DELETE FROM groups WHERE name = ?'),
    groups: p('SELECT name FROM groups ORDER BY name'),
    addMember: p('INSERT INTO group_members (group_name, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    removeMember: p('DELETE FROM group_members WHERE group_name = ? AND user_id = ?'),
    groupsOfUser: p('SELECT group_name FROM group_members WHERE user_id = ? ORDER BY group_name'),
    membersOf: p('SELECT u.* FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_name = ? ORDER BY u.username'),
    serviceUsers: p(`SELECT l.user_id, l.username AS last_username, u.* FROM service_logins l LEFT JOIN users u ON u.id = l.user_id
      WHERE l.service_id = ? AND l.user_id > ? ORDER BY l.user_id LIMIT ?`),
    token: p('SELECT * FROM request_tokens WHERE hash = ? AND expires_at > ?'),
    authenticate: p(`UPDATE request_tokens SET status = 'authenticated', user_id = ?, sso_session = ?, session_ends_at = ?, auth_at = ?, code_hash = ?, expires_at = ?
      WHERE hash = ? AND status = 'pending' AND expires_at > ? RETURNING service_id`),
    recordLogin: p(`INSERT INTO service_logins (service_id, user_id, last_at, username)
      VALUES (@service, @user, @now, (SELECT username FROM users WHERE id = @user))
      ON CONFLICT (service_id, user_id) DO UPDATE SET last_at = excluded.last_at, username = excluded.username`),
    consume: p(`UPDATE request_tokens SET status = 'used'
      WHERE hash = ? AND service_id = ? AND status = 'authenticated' AND expires_at > ?
        AND (code_hash IS NULL OR code_hash = ?) RETURNING *`),
    burn: p(`UPDATE request_tokens SET status = 'used' WHERE hash = ?`),
    pruneTokens: p('DELETE FROM request_tokens WHERE expires_at <= ?'),
    renameLogins: p('UPDATE service_logins SET username = ? WHERE user_id = ?'),
    signedIn: p('SELECT 1 FROM service_logins WHERE service_id = ? AND user_id = ?'),
    insertEvent: p(`INSERT INTO outbox (id, service_id, user_key, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
    claim: p(`SELECT * FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= @now
      AND (o.lease_until IS NULL OR o.lease_until <= @now)
      AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.service_id = o.service_id
        AND e.user_key = o.user_key AND e.seq < o.seq)
      ORDER BY o.seq LIMIT @limit`),
    // The same rule for named events only: one lookup by id each (CROSS JOIN keeps that join
    // order), so an inline delivery costs the same whatever the backlog of due events.
    claimIds: p(`SELECT o.* FROM (SELECT DISTINCT value FROM json_each(@ids)) j CROSS JOIN outbox o ON o.id = j.value
      WHERE o.status = 'pending' AND o.next_attempt_at <= @now
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
    pruneDelivered: p(`DELETE FROM outbox WHERE status = 'delivered' AND created_at < ?`),
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
      this.#st.insertUser.run({ ...userParams({ ...user, updatedAt: now }), created_at: now })
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
      try {
        this.#st.updateUser.run(userParams(user))
      } catch (err) {
        if (isUniqueViolation(err)) throw new errors.USER_EXISTS(user.username)
        throw err
      }
      // Services hear of a rename in the same transaction: what they know is the new name.
      if (patch.username !== undefined) this.#st.renameLogins.run(user.username, id)
      if (events !== undefined) this.#insertEvents(events(user))
      return user
    }).immediate()
  }

  async createService (service: Omit<ServiceRecord, 'createdAt'>): Promise<ServiceRecord> {
    const createdAt = Date.now()
    try {
      this.#st.insertService.run({ ...serviceParams(service), name: service.name, protocol: service.protocol, created_at: createdAt })
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

  async updateService (id: string, patch: ServicePatch): Promise<ServiceRecord | null> {
    return this.db.transaction((): ServiceRecord | null => {
      const row = this.#st.serviceById.get(id) as ServiceRow | undefined
      if (row === undefined) return null
      const s: ServiceRecord = { ...toService(row), ...patch }
      this.#st.updateService.run(serviceParams(s))
      return s
    }).immediate()
  }

  async createRequestToken (t: NewRequestToken): Promise<void> {
    this.#st.insertToken.run(t.hash, t.serviceId, t.nextUrl, t.prompt, t.expiresAt, t.createdAt)
  }

  async getRequestToken (hash: string, now: number): Promise<RequestTokenRecord | null> {
    const row = this.#st.token.get(hash, now) as TokenRow | undefined
    return row === undefined ? null : toToken(row)
  }

  async authenticateRequestToken (hash: string, by: TokenAuthentication, now: number): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const row = this.#st.authenticate.get(by.userId, by.ssoSession, by.sessionEndsAt, by.authAt, by.codeHash, by.expiresAt, hash, now) as { service_id: string } | undefined
      if (row === undefined) return false
      this.#st.recordLogin.run({ service: row.service_id, user: by.userId, now })
      this.#st.recordSsoService.run(by.ssoSession, row.service_id, by.userId, now)
      return true
    }).immediate()
  }

  async consumeRequestToken (hash: string, serviceId: string, now: number, codeHash: string | null): Promise<RequestTokenRecord | null> {
    const row = this.#st.consume.get(hash, serviceId, now, codeHash) as TokenRow | undefined
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

  async declineRequestToken (hash: string, now: number): Promise<boolean> {
    return this.#st.decline.run(hash, now).changes === 1
  }

  async spendDeclinedToken (hash: string, serviceId: string, now: number): Promise<boolean> {
    return this.#st.spend.get(hash, serviceId, now) !== undefined
  }

  async ssoSessionServices (ssoSession: string): Promise<SsoSessionService[]> {
    return (this.#st.ssoServices.all(ssoSession) as Array<{ service_id: string, user_id: string, last_at: number }>)
      .map((r) => ({ serviceId: r.service_id, userId: r.user_id, lastAt: r.last_at }))
  }

  async ssoSessionsOfUser (userId: string): Promise<string[]> {
    return (this.#st.ssoOfUser.all(userId) as Array<{ sso_session: string }>).map((r) => r.sso_session)
  }

  async forgetSsoSession (ssoSession: string): Promise<void> {
    this.#st.forgetSso.run(ssoSession)
  }

  async deleteUser (id: string, events: NewOutboxEvent[]): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const deleted = this.#st.deleteUser.run(id).changes === 1
      if (deleted) {
        this.#st.forgetSsoOfUser.run(id)
        this.#insertEvents(events)
      }
      return deleted
    }).immediate()
  }

  async createGroup (name: string): Promise<void> {
    this.#st.insertGroup.run(name, Date.now())
  }

  async deleteGroup (name: string): Promise<boolean> {
    return this.#st.deleteGroup.run(name).changes === 1
  }

  async listGroups (): Promise<string[]> {
    return (this.#st.groups.all() as Array<{ name: string }>).map((r) => r.name)
  }

  async setGroupMember (group: string, userId: string, member: boolean): Promise<void> {
    if (member) this.#st.addMember.run(group, userId)
    else this.#st.removeMember.run(group, userId)
  }

  async groupsOfUser (userId: string): Promise<string[]> {
    return (this.#st.groupsOfUser.all(userId) as Array<{ group_name: string }>).map((r) => r.group_name)
  }

  async groupMembers (group: string): Promise<UserRecord[]> {
    return (this.#st.membersOf.all(group) as UserRow[]).map(toUser)
  }

  async serviceUsers (serviceId: string, after: string, limit: number): Promise<Array<{ userId: string, lastUsername: string, user: UserRecord | null }>> {
    return (this.#st.serviceUsers.all(serviceId, after, limit) as Array<UserRow & { user_id: string, last_username: string }>)
      .map((r) => ({ userId: r.user_id, lastUsername: r.last_username, user: r.id === null ? null : toUser(r) }))
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
      const rows = (onlyIds === undefined
        ? this.#st.claim.all({ now, limit })
        : this.#st.claimIds.all({ now, limit, ids: JSON.stringify(onlyIds) })) as OutboxRow[]
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

  async pruneDeliveredEvents (before: number): Promise<number> {
    return this.#st.pruneDelivered.run(before).changes
  }

  async replayEvent (id: string, now: number): Promise<boolean> {
    return this.#st.replay.run(now, id).changes === 1
  }

  async deliveryStatus (): Promise<DeliveryStatus[]> {
    return (this.#st.deliveryStatus.all() as Array<{ service_id: string, pending: number, dead: number, failing_since: number | null }>)
      .map((r) => ({ serviceId: r.service_id, pending: r.pending, dead: r.dead, failingSince: r.failing_since }))
  }

  async setting (key: string, create: () => string): Promise<string> {
    return settingOf(this.db, key, create)
  }

  async close (): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
