import Database from 'better-sqlite3'
import type { Database as Db, Statement } from 'better-sqlite3'
import type { Session } from 'fastify'
import { checkpointInBackground, type SessionIndex, type SsoPrompt } from 'fastify-sso-protocol'
import { errors } from '../errors.js'
import { settingOf } from './settings.js'
import type {
  BrowserSessionStore, DeliveryStatus, EndedSessions, EndUserSessions, EventsOf, GatewayStore, GroupStore, NewOutboxEvent, NewRequestToken, NewUser,
  AuditRecord, AuditStore, NewService, OutboxEvent, OutboxStore, PreviousSecrets, RequestTokenRecord, RequestTokenStore, ServiceAccess, ServicePatch, ServiceRecord, ServiceStore, ServiceUser,
  SsoSessionService, SsoSessionStore, TokenAuthentication, TokenWithUser, UserPatch, UserRecord, UserStore
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
  'ALTER TABLE request_tokens ADD COLUMN code_hash TEXT;',
  // 6: browser sessions become part of the store (the table older versions created on the side is
  // kept), with what ended: a session or SSO session ended is never written back, and a request
  // token is never authenticated into an ended SSO session. Rows live until the session's expiry.
  `CREATE TABLE IF NOT EXISTS gateway_sessions (
     sid TEXT PRIMARY KEY,
     data TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     user_key TEXT,
     sso_session TEXT
   ) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS gateway_sessions_user ON gateway_sessions (user_key) WHERE user_key IS NOT NULL;
   CREATE INDEX IF NOT EXISTS gateway_sessions_sso ON gateway_sessions (sso_session) WHERE sso_session IS NOT NULL;
   CREATE INDEX IF NOT EXISTS gateway_sessions_expires ON gateway_sessions (expires_at);
   CREATE TABLE ended_sessions (sid TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE ended_sso_sessions (sso_session TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX request_tokens_sso ON request_tokens (sso_session) WHERE sso_session IS NOT NULL;
   CREATE INDEX request_tokens_user ON request_tokens (user_id) WHERE user_id IS NOT NULL;`,
  // 7: how pages show a service: its display name and logo.
  `ALTER TABLE services ADD COLUMN display_name TEXT;
   ALTER TABLE services ADD COLUMN logo_url TEXT;`,
  // 8: secret rotation with an overlap window, and the audit log the admin console reads.
  `ALTER TABLE services ADD COLUMN previous TEXT;
   ALTER TABLE services ADD COLUMN previous_token_hash TEXT;
   CREATE INDEX services_previous_token ON services (previous_token_hash) WHERE previous_token_hash IS NOT NULL;
   CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     kind TEXT NOT NULL,
     actor TEXT,
     user_name TEXT,
     service_name TEXT,
     detail TEXT NOT NULL
   );
   CREATE INDEX audit_log_at ON audit_log (at);
   CREATE INDEX audit_log_user ON audit_log (user_name, id) WHERE user_name IS NOT NULL;
   CREATE INDEX audit_log_service ON audit_log (service_name, id) WHERE service_name IS NOT NULL;`
]

/** The schema version this code migrates a database to. */
export const SCHEMA_VERSION = MIGRATIONS.length

/** How long what ended is remembered at least (a request in flight is over long before), in ms. */
const ENDED_MIN_MS = 3_600_000

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
  display_name: string | null
  logo_url: string | null
  previous: string | null
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
  displayName: r.display_name,
  logoUrl: r.logo_url,
  previous: r.previous === null ? null : JSON.parse(r.previous) as PreviousSecrets,
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
const serviceParams = (s: NewService): Record<string, unknown> => ({
  id: s.id,
  base_url: s.baseUrl,
  event_url: s.eventUrl,
  token_hash: s.tokenHash,
  signing_secret: s.signingSecret,
  django_token: s.djangoToken,
  enabled: bool(s.enabled),
  fresh_login: bool(s.freshLogin),
  access: s.access === null ? null : JSON.stringify(s.access),
  fields: s.fields === null ? null : JSON.stringify(s.fields),
  display_name: s.displayName,
  logo_url: s.logoUrl,
  previous: s.previous === undefined || s.previous === null ? null : JSON.stringify(s.previous),
  previous_token_hash: s.previous?.tokenHash ?? null
})

function isUniqueViolation (err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    (err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}

function isBusy (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED'
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

function prepareStatements (db: Db) {
  const p = (sql: string): Statement => db.prepare(sql)
  return {
    insertUser: p(`INSERT INTO users (id, username, password_hash, is_active, is_staff, is_superuser, email, display_name, attributes, created_at, updated_at)
      VALUES (@id, @username, @password_hash, @is_active, @is_staff, @is_superuser, @email, @display_name, @attributes, @created_at, @updated_at)`),
    userById: p('SELECT * FROM users WHERE id = ?'),
    userByName: p('SELECT * FROM users WHERE username = ?'),
    // The prefix as a range on the unique index (`prefix` to `prefix` followed by the highest code point).
    users: p(`SELECT * FROM users WHERE username > @after AND username >= @prefix AND username < @prefix || char(1114111)
      ORDER BY username LIMIT @limit`),
    updateUser: p(`UPDATE users SET username = @username, password_hash = @password_hash, is_active = @is_active, is_staff = @is_staff,
      is_superuser = @is_superuser, email = @email, display_name = @display_name, attributes = @attributes, updated_at = @updated_at
      WHERE id = @id`),
    insertService: p(`INSERT INTO services (id, name, base_url, event_url, token_hash, signing_secret, django_token, protocol, enabled,
        fresh_login, access, fields, display_name, logo_url, previous, previous_token_hash, created_at)
      VALUES (@id, @name, @base_url, @event_url, @token_hash, @signing_secret, @django_token, @protocol, @enabled,
        @fresh_login, @access, @fields, @display_name, @logo_url, @previous, @previous_token_hash, @created_at)`),
    serviceById: p('SELECT * FROM services WHERE id = ?'),
    serviceByName: p('SELECT * FROM services WHERE name = ?'),
    serviceByToken: p(`SELECT * FROM services WHERE token_hash = @hash
      UNION ALL SELECT * FROM services WHERE previous_token_hash = @hash LIMIT 1`),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    services: p('SELECT * FROM services ORDER BY created_at, name'),
    updateService: p(`UPDATE services SET base_url = @base_url, event_url = @event_url, token_hash = @token_hash,
      signing_secret = @signing_secret, django_token = @django_token, enabled = @enabled, fresh_login = @fresh_login,
      access = @access, fields = @fields, display_name = @display_name, logo_url = @logo_url,
      previous = @previous, previous_token_hash = @previous_token_hash WHERE id = @id`),
    insertToken: p(`INSERT INTO request_tokens (hash, service_id, next_url, status, prompt, expires_at, created_at)
      VALUES (?, ?, ?, 'pending', ?, ?, ?)`),
    decline: p(`UPDATE request_tokens SET status = 'declined' WHERE hash = ? AND status = 'pending' AND expires_at > ?`),
    spend: p(`UPDATE request_tokens SET status = 'used' WHERE hash = ? AND service_id = ? AND status = 'declined' AND expires_at > ? RETURNING hash`),
    recordSsoService: p(`INSERT INTO sso_session_services (sso_session, service_id, user_id, last_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (sso_session, service_id) DO UPDATE SET last_at = excluded.last_at`),
    ssoServices: p('SELECT service_id, user_id, last_at FROM sso_session_services WHERE sso_session = ? ORDER BY last_at'),
    deleteUser: p('DELETE FROM users WHERE id = ?'),
    insertGroup: p('INSERT INTO groups (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
    deleteGroup: p('DELETE FROM groups WHERE name = ?'),
    groupExists: p('SELECT 1 FROM groups WHERE name = ?'),
    groups: p('SELECT name FROM groups ORDER BY name'),
    addMember: p('INSERT INTO group_members (group_name, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    removeMember: p('DELETE FROM group_members WHERE group_name = ? AND user_id = ?'),
    groupsOfUser: p('SELECT group_name FROM group_members WHERE user_id = ? ORDER BY group_name'),
    membersOf: p('SELECT u.* FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_name = ? ORDER BY u.username'),
    serviceUsers: p(`SELECT l.user_id, l.username AS last_username, u.* FROM service_logins l LEFT JOIN users u ON u.id = l.user_id
      WHERE l.service_id = ? AND l.user_id > ? ORDER BY l.user_id LIMIT ?`),
    token: p('SELECT * FROM request_tokens WHERE hash = ? AND expires_at > ?'),
    // The token, its user and the user's groups in one statement (what /sso/get/ reads).
    tokenWithUser: p(`SELECT t.*, u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash,
        u.is_active AS u_is_active, u.is_staff AS u_is_staff, u.is_superuser AS u_is_superuser, u.email AS u_email,
        u.display_name AS u_display_name, u.attributes AS u_attributes, u.created_at AS u_created_at, u.updated_at AS u_updated_at,
        (SELECT json_group_array(group_name ORDER BY group_name) FROM group_members WHERE user_id = t.user_id) AS u_groups
      FROM request_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ? AND t.expires_at > ?`),
    // Never into an SSO session that has ended (signed out while this request was on its way).
    authenticate: p(`UPDATE request_tokens SET status = 'authenticated', user_id = ?, sso_session = ?, session_ends_at = ?, auth_at = ?, code_hash = ?, expires_at = ?
      WHERE hash = ? AND status = 'pending' AND expires_at > ?
        AND NOT EXISTS (SELECT 1 FROM ended_sso_sessions WHERE sso_session = ?) RETURNING service_id`),
    recordLogin: p(`INSERT INTO service_logins (service_id, user_id, last_at, username)
      VALUES (@service, @user, @now, (SELECT username FROM users WHERE id = @user))
      ON CONFLICT (service_id, user_id) DO UPDATE SET last_at = excluded.last_at, username = excluded.username`),
    consume: p(`UPDATE request_tokens SET status = 'used'
      WHERE hash = ? AND service_id = ? AND status = 'authenticated' AND expires_at > ?
        AND (code_hash IS NULL OR code_hash = ?) RETURNING *`),
    burn: p(`UPDATE request_tokens SET status = 'used' WHERE hash = ?`),
    burnOfSso: p(`UPDATE request_tokens SET status = 'used' WHERE sso_session = ? AND status = 'authenticated'`),
    burnOfUser: p(`UPDATE request_tokens SET status = 'used' WHERE user_id = ? AND status = 'authenticated'`),
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
    expediteService: p(`UPDATE outbox SET next_attempt_at = @now WHERE status = 'pending' AND service_id = @service
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
      FROM outbox WHERE status != 'delivered' GROUP BY service_id ORDER BY service_id`),
    // Browser sessions. `set` writes nothing for a session, or an SSO session, that ended.
    sessionGet: p('SELECT data, expires_at FROM gateway_sessions WHERE sid = ?'),
    sessionSet: p(`INSERT INTO gateway_sessions (sid, data, expires_at, user_key, sso_session)
      SELECT @sid, @data, @expires, @user, @sso
      WHERE NOT EXISTS (SELECT 1 FROM ended_sessions WHERE sid = @sid)
        AND NOT EXISTS (SELECT 1 FROM ended_sso_sessions WHERE sso_session = @sso)
      ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at,
        user_key = excluded.user_key, sso_session = excluded.sso_session`),
    sessionEnd: p(`INSERT INTO ended_sessions (sid, expires_at) SELECT sid, MAX(expires_at, @floor) FROM gateway_sessions WHERE sid = @sid
      ON CONFLICT (sid) DO NOTHING`),
    sessionDelete: p('DELETE FROM gateway_sessions WHERE sid = ?'),
    ssoOfUserSessions: p(`SELECT DISTINCT sso_session FROM gateway_sessions WHERE user_key = ? AND sso_session IS NOT NULL
      UNION SELECT sso_session FROM sso_session_services WHERE user_id = ?`),
    ssoUser: p(`SELECT user_key AS user_id FROM gateway_sessions WHERE sso_session = ? AND user_key IS NOT NULL
      UNION SELECT user_id FROM sso_session_services WHERE sso_session = ? LIMIT 1`),
    endSsoSessions: p(`INSERT INTO ended_sso_sessions (sso_session, expires_at)
      VALUES (@sso, MAX(@floor, COALESCE((SELECT MAX(expires_at) FROM gateway_sessions WHERE sso_session = @sso), 0)))
      ON CONFLICT (sso_session) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`),
    endSessionsOfSso: p(`INSERT INTO ended_sessions (sid, expires_at) SELECT sid, MAX(expires_at, @floor) FROM gateway_sessions WHERE sso_session = @sso
      ON CONFLICT (sid) DO NOTHING`),
    endSessionsOfUser: p(`INSERT INTO ended_sessions (sid, expires_at) SELECT sid, MAX(expires_at, @floor) FROM gateway_sessions WHERE user_key = @user
      ON CONFLICT (sid) DO NOTHING`),
    deleteSessionsOfSso: p('DELETE FROM gateway_sessions WHERE sso_session = ?'),
    deleteSessionsOfUser: p('DELETE FROM gateway_sessions WHERE user_key = ?'),
    forgetSso: p('DELETE FROM sso_session_services WHERE sso_session = ?'),
    forgetSsoOfUser: p('DELETE FROM sso_session_services WHERE user_id = ?'),
    sessionsOfUser: p('SELECT data FROM gateway_sessions WHERE user_key = ? AND expires_at > ?'),
    touchSso: p(`UPDATE gateway_sessions SET data = json_set(data, '$.seenAt', @now),
      expires_at = MIN(@now + @idle, COALESCE(json_extract(data, '$.createdAt') + @absolute, @now + @idle))
      WHERE sso_session = @sso AND expires_at > @now`),
    takeExpired: p(`DELETE FROM gateway_sessions WHERE sid IN
      (SELECT sid FROM gateway_sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING user_key, sso_session, expires_at`),
    pruneEnded: p('DELETE FROM ended_sessions WHERE expires_at <= ?'),
    pruneEndedSso: p('DELETE FROM ended_sso_sessions WHERE expires_at <= ?'),
    auditAppend: p(`INSERT INTO audit_log (at, kind, actor, user_name, service_name, detail)
      VALUES (@at, @kind, @actor, @user, @service, @detail)`),
    // Each filter applies only when given; newest first, by id.
    auditList: p(`SELECT * FROM audit_log WHERE (@user IS NULL OR user_name = @user) AND (@service IS NULL OR service_name = @service)
      AND (@kind IS NULL OR kind = @kind) AND (@since IS NULL OR at >= @since) AND (@until IS NULL OR at < @until)
      AND (@before IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit`),
    auditPrune: p('DELETE FROM audit_log WHERE at < ?')
  }
}

type Statements = ReturnType<typeof prepareStatements>

export interface SqliteGatewayStoreOptions {
  /** SQLite file path, or ':memory:'. @default 'sso-gateway.sqlite' */
  filename?: string
  /**
   * How long an operation waits for another writer before failing (503), in ms. The wait never
   * blocks the event loop: the lock is tried without waiting, then again after short async pauses.
   * @default 5000
   */
  busyTimeout?: number
  /**
   * How often the WAL is checkpointed (copied back into the database file), in ms. Checkpoints run
   * from a timer, off the request path, instead of inside whichever commit fills the WAL.
   * @default 1000
   */
  checkpointInterval?: number
}

/**
 * Runs statements against the database: each operation is tried without blocking and, while
 * another connection holds the lock, tried again after async pauses (1, 2, 4 … 32 ms) until
 * `busyTimeout`; writes run in one `BEGIN IMMEDIATE` transaction each.
 */
class Runner {
  constructor (readonly db: Db, readonly st: Statements, readonly busyTimeout: number) {}

  /** Reads, or one statement (SQLite makes a single statement atomic by itself). */
  async one<T> (fn: (st: Statements) => T): Promise<T> {
    return await this.#retry(() => fn(this.st))
  }

  async write<T> (fn: (st: Statements) => T): Promise<T> {
    return await this.#retry(() => this.db.transaction(() => fn(this.st)).immediate())
  }

  async #retry<T> (fn: () => T, deadline = Date.now() + this.busyTimeout, pause = 1): Promise<T> {
    try {
      return fn()
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err
    }
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())))
    return await this.#retry(fn, deadline, Math.min(pause * 2, 32))
  }
}

function insertEvents (st: Statements, events: NewOutboxEvent[], now: number): void {
  for (const e of events) st.insertEvent.run(e.id, e.serviceId, e.userKey, e.payload, now, now)
}

/**
 * Ends SSO sessions inside a transaction: their browser sessions are deleted (and never written
 * back), their reach forgotten, their authenticated tokens burnt.
 */
function endSsoSessions (st: Statements, ids: Iterable<{ id: string, userId: string }>, now: number): EndedSessions {
  const ended: EndedSessions = { browserSessions: 0, ssoSessions: [] }
  const floor = now + ENDED_MIN_MS
  for (const { id, userId } of ids) {
    const services = (st.ssoServices.all(id) as Array<{ service_id: string }>).map((r) => r.service_id)
    st.endSsoSessions.run({ sso: id, floor })
    st.endSessionsOfSso.run({ sso: id, floor })
    ended.browserSessions += st.deleteSessionsOfSso.run(id).changes
    st.forgetSso.run(id)
    st.burnOfSso.run(id)
    ended.ssoSessions.push({ id, userId, services })
  }
  return ended
}

/** Ends every session of a user (but `except`), as `endSsoSessions`; without `except`, sessions without an SSO session too. */
function endUserSessions (st: Statements, userId: string, now: number, except?: string): EndedSessions {
  const ids = (st.ssoOfUserSessions.all(userId, userId) as Array<{ sso_session: string }>)
    .map((r) => r.sso_session).filter((id) => id !== except)
  const ended = endSsoSessions(st, ids.map((id) => ({ id, userId })), now)
  if (except === undefined) {
    st.endSessionsOfUser.run({ user: userId, floor: now + ENDED_MIN_MS })
    ended.browserSessions += st.deleteSessionsOfUser.run(userId).changes
    st.forgetSsoOfUser.run(userId)
    st.burnOfUser.run(userId)
  }
  return ended
}

/**
 * The default gateway store: one SQLite file through better-sqlite3, in WAL mode, with
 * versioned migrations applied when it opens. Every change and the events it causes are
 * written in one transaction; no operation blocks the event loop waiting for a lock.
 */
export class SqliteGatewayStore implements GatewayStore {
  /** The open database (for tests and tools; the gateway reads it only through the store). */
  readonly db: Db
  readonly users: UserStore
  readonly groups: GroupStore
  readonly services: ServiceStore
  readonly tokens: RequestTokenStore
  readonly ssoSessions: SsoSessionStore
  readonly sessions: BrowserSessionStore
  readonly outbox: OutboxStore
  readonly #stopCheckpoints: () => void
  readonly audit: AuditStore

  constructor (options: SqliteGatewayStoreOptions = {}) {
    // A short blocking wait only (a commit under way takes well under that); longer waits are async.
    this.db = new Database(options.filename ?? 'sso-gateway.sqlite', { timeout: 2 })
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma('foreign_keys = ON')
    this.#migrate()
    this.#stopCheckpoints = checkpointInBackground(this.db, options.checkpointInterval ?? 1000)
    const run = new Runner(this.db, prepareStatements(this.db), options.busyTimeout ?? 5000)
    this.users = sqliteUsers(run)
    this.groups = sqliteGroups(run)
    this.services = sqliteServices(run)
    this.tokens = sqliteTokens(run)
    this.ssoSessions = { services: async (ssoSession) => await run.one((st) => ssoServicesOf(st, ssoSession)) }
    this.sessions = sqliteSessions(run)
    this.outbox = sqliteOutbox(run)
    this.audit = sqliteAudit(run)
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

  async setting (key: string, create: () => string): Promise<string> {
    return settingOf(this.db, key, create)
  }

  async close (): Promise<void> {
    this.#stopCheckpoints()
    if (this.db.open) this.db.close()
  }
}

function ssoServicesOf (st: Statements, ssoSession: string): SsoSessionService[] {
  return (st.ssoServices.all(ssoSession) as Array<{ service_id: string, user_id: string, last_at: number }>)
    .map((r) => ({ serviceId: r.service_id, userId: r.user_id, lastAt: r.last_at }))
}

function sqliteUsers (run: Runner): UserStore {
  const byId = (st: Statements, id: string): UserRecord | null => {
    const row = st.userById.get(id) as UserRow | undefined
    return row === undefined ? null : toUser(row)
  }
  return {
    create: async (user: NewUser) => await run.write((st) => {
      const now = Date.now()
      try {
        st.insertUser.run({ ...userParams({ ...user, updatedAt: now }), created_at: now })
      } catch (err) {
        if (isUniqueViolation(err)) throw new errors.USER_EXISTS(user.username)
        throw err
      }
      return { ...user, createdAt: now, updatedAt: now }
    }),
    byId: async (id) => await run.one((st) => byId(st, id)),
    list: async (after, limit, prefix = '') => await run.one((st) =>
      (st.users.all({ after, limit, prefix }) as UserRow[]).map(toUser)),
    byUsername: async (username) => await run.one((st) => {
      const row = st.userByName.get(username) as UserRow | undefined
      return row === undefined ? null : toUser(row)
    }),
    update: async (id: string, patch: UserPatch, events?: (user: UserRecord, ended: EndedSessions) => NewOutboxEvent[], end?: EndUserSessions) =>
      await run.write((st): UserRecord | null => {
        const old = byId(st, id)
        if (old === null) return null
        const now = Date.now()
        const user: UserRecord = { ...old, ...patch, updatedAt: now }
        try {
          st.updateUser.run(userParams(user))
        } catch (err) {
          if (isUniqueViolation(err)) throw new errors.USER_EXISTS(user.username)
          throw err
        }
        // Services hear of a rename in the same transaction: what they know is the new name.
        if (patch.username !== undefined) st.renameLogins.run(user.username, id)
        const ended = end === undefined ? { browserSessions: 0, ssoSessions: [] } : endUserSessions(st, id, now, end.exceptSsoSession)
        if (events !== undefined) insertEvents(st, events(user, ended), now)
        return user
      }),
    delete: async (id: string, events: EventsOf<EndedSessions>) => await run.write((st): EndedSessions | null => {
      const now = Date.now()
      const ended = endUserSessions(st, id, now)
      if (st.deleteUser.run(id).changes === 0) return null
      insertEvents(st, events(ended), now)
      return ended
    })
  }
}

function sqliteGroups (run: Runner): GroupStore {
  const ofUser = (st: Statements, userId: string): string[] =>
    (st.groupsOfUser.all(userId) as Array<{ group_name: string }>).map((r) => r.group_name)
  return {
    create: async (name) => { await run.one((st) => st.insertGroup.run(name, Date.now())) },
    delete: async (name) => await run.one((st) => st.deleteGroup.run(name).changes === 1),
    list: async () => await run.one((st) => (st.groups.all() as Array<{ name: string }>).map((r) => r.name)),
    setMember: async (group, userId, member, events) => await run.write((st) => {
      if (st.groupExists.get(group) === undefined) throw new errors.INVALID_GROUP(JSON.stringify(group))
      if (member) st.addMember.run(group, userId)
      else st.removeMember.run(group, userId)
      const groups = ofUser(st, userId)
      insertEvents(st, events(groups), Date.now())
      return groups
    }),
    ofUser: async (userId) => await run.one((st) => ofUser(st, userId)),
    members: async (group) => await run.one((st) => (st.membersOf.all(group) as UserRow[]).map(toUser))
  }
}

/** A service record nobody can change in place (the cache hands the same object to every caller). */
function frozenService (r: ServiceRecord): ServiceRecord {
  if (r.access !== null) {
    Object.freeze(r.access.users)
    Object.freeze(r.access.groups)
    Object.freeze(r.access)
  }
  if (r.fields !== null) Object.freeze(r.fields)
  if (r.previous !== null) Object.freeze(r.previous)
  return Object.freeze(r)
}

/** At most this many services are cached (more only in odd deployments: the cache then starts over). */
const SERVICE_CACHE_MAX = 10_000

/**
 * Services are read on every protocol request (by the hash of the caller's secret) and change
 * rarely: they are kept in memory. The cache is dropped on every change made through this store
 * (at once), and when another connection (another gateway process on the file, the CLI) has
 * committed to the database: SQLite's `data_version` is checked once per event-loop turn, so a
 * change made elsewhere (a service disabled with the CLI) counts from the next turn on. The
 * check costs as much as the lookup it saves, hence once per turn, not per request. Unknown
 * secrets are never cached.
 */
class ServiceCache {
  readonly #byHash = new Map<string, ServiceRecord>()
  readonly #byId = new Map<string, ServiceRecord>()
  #version = -1
  /** Whether `data_version` was checked in this event-loop turn. */
  #checked = false

  constructor (readonly run: Runner) {}

  /** The entry for `key`, or it is looked up (and kept if found). */
  async get (index: 'hash' | 'id', key: string): Promise<ServiceRecord | null> {
    return await this.run.one((st) => {
      if (!this.#checked) {
        const version = st.dataVersion.get() as number
        if (version !== this.#version) {
          this.clear()
          this.#version = version
        }
        this.#checked = true
        setImmediate(() => { this.#checked = false })
      }
      const map = index === 'hash' ? this.#byHash : this.#byId
      const hit = map.get(key)
      if (hit !== undefined) return hit
      const row = (index === 'hash' ? st.serviceByToken.get({ hash: key }) : st.serviceById.get(key)) as ServiceRow | undefined
      if (row === undefined) return null
      /* c8 ignore next: a memory bound for fleets of more than 10,000 services; a test would need 10,001 of them */
      if (this.#byId.size >= SERVICE_CACHE_MAX) this.clear()
      const service = frozenService(toService(row))
      this.#byHash.set(service.tokenHash, service)
      // Found by its previous secret (a rotation's overlap): kept under that hash too; whether
      // the previous secret is still good is decided by the caller, at each use.
      if (index === 'hash') this.#byHash.set(key, service)
      this.#byId.set(service.id, service)
      return service
    })
  }

  clear (): void {
    this.#byHash.clear()
    this.#byId.clear()
  }
}

function sqliteServices (run: Runner): ServiceStore {
  const one = (row: unknown): ServiceRecord | null => row === undefined ? null : toService(row as ServiceRow)
  const cache = new ServiceCache(run)
  return {
    create: async (service) => await run.write((st) => {
      cache.clear()
      const createdAt = Date.now()
      try {
        st.insertService.run({ ...serviceParams(service), name: service.name, protocol: service.protocol, created_at: createdAt })
      } catch (err) {
        if (isUniqueViolation(err)) throw new errors.SERVICE_EXISTS(service.name)
        throw err
      }
      return { ...service, previous: service.previous ?? null, createdAt }
    }),
    byId: async (id) => await cache.get('id', id),
    byName: async (name) => await run.one((st) => one(st.serviceByName.get(name))),
    byTokenHash: async (tokenHash) => await cache.get('hash', tokenHash),
    list: async () => await run.one((st) => (st.services.all() as ServiceRow[]).map(toService)),
    update: async (id: string, patch: ServicePatch, events?: EventsOf<ServiceRecord>) => await run.write((st): ServiceRecord | null => {
      cache.clear()
      const old = one(st.serviceById.get(id))
      if (old === null) return null
      const service: ServiceRecord = { ...old, ...patch }
      st.updateService.run(serviceParams(service))
      if (events !== undefined) insertEvents(st, events(service), Date.now())
      return service
    }),
    hasUser: async (serviceId, userId) => await run.one((st) => st.signedIn.get(serviceId, userId) !== undefined),
    users: async (serviceId, after, limit) => await run.one((st): ServiceUser[] =>
      (st.serviceUsers.all(serviceId, after, limit) as Array<UserRow & { user_id: string, last_username: string }>)
        .map((r) => ({ userId: r.user_id, lastUsername: r.last_username, user: r.id === null ? null : toUser(r) })))
  }
}

function sqliteTokens (run: Runner): RequestTokenStore {
  const one = (row: unknown): RequestTokenRecord | null => row === undefined ? null : toToken(row as TokenRow)
  return {
    create: async (t: NewRequestToken) => {
      await run.one((st) => st.insertToken.run(t.hash, t.serviceId, t.nextUrl, t.prompt, t.expiresAt, t.createdAt))
    },
    get: async (hash, now) => await run.one((st) => one(st.token.get(hash, now))),
    getWithUser: async (hash, now) => await run.one((st): TokenWithUser | null => {
      const r = st.tokenWithUser.get(hash, now) as (TokenRow & { [K in keyof UserRow as `u_${K}`]: UserRow[K] | null } & { u_groups: string }) | undefined
      if (r === undefined) return null
      const user = r.u_id === null
        ? null
        : toUser({
          id: r.u_id, username: r.u_username as string, password_hash: r.u_password_hash, is_active: r.u_is_active as number,
          is_staff: r.u_is_staff as number, is_superuser: r.u_is_superuser as number, email: r.u_email, display_name: r.u_display_name,
          attributes: r.u_attributes as string, created_at: r.u_created_at as number, updated_at: r.u_updated_at as number
        })
      return { token: toToken(r), user, groups: JSON.parse(r.u_groups) as string[] }
    }),
    authenticate: async (hash: string, by: TokenAuthentication, now: number, events?: EventsOf<string>) => await run.write((st): boolean => {
      const row = st.authenticate.get(by.userId, by.ssoSession, by.sessionEndsAt, by.authAt, by.codeHash, by.expiresAt, hash, now, by.ssoSession) as { service_id: string } | undefined
      if (row === undefined) return false
      st.recordLogin.run({ service: row.service_id, user: by.userId, now })
      st.recordSsoService.run(by.ssoSession, row.service_id, by.userId, now)
      if (events !== undefined) insertEvents(st, events(row.service_id), now)
      return true
    }),
    decline: async (hash, now) => await run.one((st) => st.decline.run(hash, now).changes === 1),
    spendDeclined: async (hash, serviceId, now) => await run.one((st) => st.spend.get(hash, serviceId, now) !== undefined),
    consume: async (hash, serviceId, now, codeHash) => await run.one((st) => one(st.consume.get(hash, serviceId, now, codeHash))),
    burn: async (hash) => { await run.one((st) => st.burn.run(hash)) },
    prune: async (now) => await run.one((st) => st.pruneTokens.run(now).changes)
  }
}

function sqliteSessions (run: Runner): BrowserSessionStore {
  return {
    get: async (sid, now) => await run.one((st): Session | null => {
      // An expired row is not returned, and not deleted here either: `takeExpired` removes it,
      // so the gateway can still end its SSO session at the services.
      const row = st.sessionGet.get(sid) as { data: string, expires_at: number } | undefined
      return row !== undefined && row.expires_at > now ? JSON.parse(row.data) as Session : null
    }),
    set: async (sid: string, session: Session, index: SessionIndex) => {
      await run.one((st) => st.sessionSet.run({
        sid, data: JSON.stringify(session), expires: index.expiresAt, user: index.user, sso: index.ssoSession
      }))
    },
    destroy: async (sid) => {
      await run.write((st) => {
        st.sessionEnd.run({ sid, floor: Date.now() + ENDED_MIN_MS })
        st.sessionDelete.run(sid)
      })
    },
    destroyByUser: async (userId, events, exceptSsoSession) => await run.write((st) => {
      const now = Date.now()
      const ended = endUserSessions(st, userId, now, exceptSsoSession)
      insertEvents(st, events(ended), now)
      return ended
    }),
    destroyBySsoSession: async (ssoSession, events) => await run.write((st) => {
      const now = Date.now()
      const owner = st.ssoUser.get(ssoSession, ssoSession) as { user_id: string } | undefined
      const ended = endSsoSessions(st, [{ id: ssoSession, userId: owner?.user_id ?? '' }], now)
      insertEvents(st, events(ended), now)
      return ended
    }),
    listByUser: async (userId, now) => await run.one((st) =>
      (st.sessionsOfUser.all(userId, now) as Array<{ data: string }>).map((r) => JSON.parse(r.data) as Session)),
    touch: async (ssoSession, now, lifetime) => await run.one((st) =>
      st.touchSso.run({ sso: ssoSession, now, idle: lifetime.idleTimeout, absolute: lifetime.absoluteTimeout }).changes),
    takeExpired: async (now, limit) => await run.write((st) => {
      st.pruneEnded.run(now)
      st.pruneEndedSso.run(now)
      // RETURNING comes in no particular order: oldest first, as the contract says.
      return (st.takeExpired.all(now, limit) as Array<{ user_key: string | null, sso_session: string | null, expires_at: number }>)
        .sort((a, b) => a.expires_at - b.expires_at).map((r) => ({ user: r.user_key, ssoSession: r.sso_session }))
    })
  }
}

function sqliteOutbox (run: Runner): OutboxStore {
  return {
    enqueue: async (events) => { await run.write((st) => insertEvents(st, events, Date.now())) },
    claim: async (now, leaseMs, limit, onlyIds) => await run.write((st): OutboxEvent[] => {
      // The ordering rule (no earlier pending event for the same service and user) is in the query.
      const rows = (onlyIds === undefined
        ? st.claim.all({ now, limit })
        : st.claimIds.all({ now, limit, ids: JSON.stringify(onlyIds) })) as OutboxRow[]
      for (const r of rows) st.lease.run(now + leaseMs, r.id)
      return rows.map(toEvent)
    }),
    expedite: async (serviceId, userKey, now) => await run.write((st): string[] => {
      st.expedite.run({ now, service: serviceId, user: userKey })
      return (st.pendingOf.all(serviceId, userKey) as Array<{ id: string }>).map((r) => r.id)
    }),
    expediteService: async (serviceId, now) => await run.one((st) => st.expediteService.run({ now, service: serviceId }).changes),
    complete: async (id) => { await run.one((st) => st.complete.run(id)) },
    fail: async (id, error, nextAttemptAt, now) => { await run.one((st) => st.fail.run({ id, error, next: nextAttemptAt, now })) },
    release: async (id) => { await run.one((st) => st.release.run(id)) },
    list: async (status, limit) => await run.one((st) => (st.eventsByStatus.all(status, limit) as OutboxRow[]).map(toEvent)),
    prune: async (before) => await run.one((st) => st.pruneDelivered.run(before).changes),
    replay: async (id, now) => await run.one((st) => st.replay.run(now, id).changes === 1),
    status: async () => await run.one((st) =>
      (st.deliveryStatus.all() as Array<{ service_id: string, pending: number, dead: number, failing_since: number | null }>)
        .map((r) => ({ serviceId: r.service_id, pending: r.pending, dead: r.dead, failingSince: r.failing_since })))
  }
}

interface AuditRow {
  id: number
  at: number
  kind: string
  actor: string | null
  user_name: string | null
  service_name: string | null
  detail: string
}

function sqliteAudit (run: Runner): AuditStore {
  return {
    append: async (records) => {
      await run.write((st) => {
        for (const r of records) {
          st.auditAppend.run({ at: r.at, kind: r.kind, actor: r.actor, user: r.user, service: r.service, detail: JSON.stringify(r.detail) })
        }
      })
    },
    list: async (f) => await run.one((st) => (st.auditList.all({
      user: f.user ?? null,
      service: f.service ?? null,
      kind: f.kind ?? null,
      since: f.since ?? null,
      until: f.until ?? null,
      before: f.beforeId ?? null,
      limit: f.limit
    }) as AuditRow[]).map((r): AuditRecord => ({
      id: r.id, at: r.at, kind: r.kind, actor: r.actor, user: r.user_name, service: r.service_name, detail: JSON.parse(r.detail) as Record<string, unknown>
    }))),
    prune: async (before) => await run.one((st) => st.auditPrune.run(before).changes)
  }
}
