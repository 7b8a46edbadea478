import pg from 'pg'
import type { Pool, PoolClient, PoolConfig, QueryConfig } from 'pg'
import type { Session } from 'fastify'
import type { SessionIndex, SsoPrompt } from 'fastify-sso-protocol'
import { errors } from '../errors.js'
import type {
  AuditRecord, AuditStore, BrowserSessionStore, EndedSessions, EndUserSessions, EventsOf, GatewayStore, GroupStore, NewOutboxEvent, NewRequestToken, NewUser,
  NewService, OutboxEvent, OutboxStore, PreviousSecrets, RequestTokenRecord, RequestTokenStore, ServiceAccess, ServicePatch, ServiceRecord, ServiceStore, ServiceUser,
  SsoSessionService, SsoSessionStore, TokenAuthentication, UserPatch, UserRecord, UserStore
} from './store.js'

/**
 * Versioned migrations, applied in order, each in its own transaction, under an advisory lock
 * (processes starting together wait for one another). Never edit a released entry: append one.
 * Text keys sort as bytes (`COLLATE "C"`), as in SQLite, whatever the database's locale.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id TEXT COLLATE "C" PRIMARY KEY,
     username TEXT COLLATE "C" NOT NULL UNIQUE,
     password_hash TEXT,
     is_active BOOLEAN NOT NULL,
     is_staff BOOLEAN NOT NULL,
     is_superuser BOOLEAN NOT NULL,
     email TEXT,
     display_name TEXT,
     attributes JSONB NOT NULL DEFAULT '{}',
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   );
   CREATE TABLE services (
     id TEXT COLLATE "C" PRIMARY KEY,
     name TEXT COLLATE "C" NOT NULL UNIQUE,
     base_url TEXT NOT NULL,
     event_url TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     signing_secret TEXT NOT NULL,
     django_token TEXT,
     protocol TEXT NOT NULL,
     enabled BOOLEAN NOT NULL,
     fresh_login BOOLEAN NOT NULL DEFAULT false,
     access JSONB,
     fields JSONB,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE request_tokens (
     hash TEXT PRIMARY KEY,
     service_id TEXT NOT NULL REFERENCES services(id),
     next_url TEXT NOT NULL,
     status TEXT NOT NULL,
     user_id TEXT,
     sso_session TEXT,
     session_ends_at BIGINT,
     prompt TEXT,
     auth_at BIGINT,
     code_hash TEXT,
     expires_at BIGINT NOT NULL,
     created_at BIGINT NOT NULL
   );
   CREATE INDEX request_tokens_expires ON request_tokens (expires_at);
   CREATE INDEX request_tokens_sso ON request_tokens (sso_session) WHERE sso_session IS NOT NULL;
   CREATE INDEX request_tokens_user ON request_tokens (user_id) WHERE user_id IS NOT NULL;
   CREATE TABLE service_logins (
     service_id TEXT NOT NULL,
     user_id TEXT COLLATE "C" NOT NULL,
     last_at BIGINT NOT NULL,
     username TEXT,
     PRIMARY KEY (service_id, user_id)
   );
   CREATE INDEX service_logins_user ON service_logins (user_id);
   CREATE TABLE sso_session_services (
     sso_session TEXT NOT NULL,
     service_id TEXT NOT NULL,
     user_id TEXT NOT NULL,
     last_at BIGINT NOT NULL,
     PRIMARY KEY (sso_session, service_id)
   );
   CREATE INDEX sso_session_services_user ON sso_session_services (user_id);
   CREATE TABLE groups (name TEXT COLLATE "C" PRIMARY KEY, created_at BIGINT NOT NULL);
   CREATE TABLE group_members (
     group_name TEXT COLLATE "C" NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
     user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     PRIMARY KEY (group_name, user_id)
   );
   CREATE INDEX group_members_user ON group_members (user_id);
   CREATE TABLE outbox (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     service_id TEXT COLLATE "C" NOT NULL,
     user_key TEXT NOT NULL,
     payload TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'pending',
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at BIGINT NOT NULL,
     lease_until BIGINT,
     last_error TEXT,
     failing_since BIGINT,
     created_at BIGINT NOT NULL
   );
   CREATE INDEX outbox_due ON outbox (next_attempt_at, seq) WHERE status = 'pending';
   CREATE INDEX outbox_order ON outbox (service_id, user_key, seq) WHERE status = 'pending';
   CREATE INDEX outbox_status ON outbox (status, seq);
   CREATE TABLE gateway_sessions (
     sid TEXT PRIMARY KEY,
     data JSONB NOT NULL,
     expires_at BIGINT NOT NULL,
     user_key TEXT,
     sso_session TEXT
   );
   CREATE INDEX gateway_sessions_user ON gateway_sessions (user_key) WHERE user_key IS NOT NULL;
   CREATE INDEX gateway_sessions_sso ON gateway_sessions (sso_session) WHERE sso_session IS NOT NULL;
   CREATE INDEX gateway_sessions_expires ON gateway_sessions (expires_at);
   CREATE TABLE ended_sessions (sid TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
   CREATE TABLE ended_sso_sessions (sso_session TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at BIGINT NOT NULL);`,
  // 2: how pages show a service, secret rotation with an overlap window, the audit log.
  `ALTER TABLE services ADD COLUMN display_name TEXT;
   ALTER TABLE services ADD COLUMN logo_url TEXT;
   ALTER TABLE services ADD COLUMN previous JSONB;
   ALTER TABLE services ADD COLUMN previous_token_hash TEXT;
   CREATE INDEX services_previous_token ON services (previous_token_hash) WHERE previous_token_hash IS NOT NULL;
   CREATE TABLE audit_log (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     at BIGINT NOT NULL,
     kind TEXT NOT NULL,
     actor TEXT,
     user_name TEXT,
     service_name TEXT,
     detail JSONB NOT NULL
   );
   CREATE INDEX audit_log_at ON audit_log (at);
   CREATE INDEX audit_log_user ON audit_log (user_name, id) WHERE user_name IS NOT NULL;
   CREATE INDEX audit_log_service ON audit_log (service_name, id) WHERE service_name IS NOT NULL;`
]

/** The schema version this code migrates a PostgreSQL database to. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length

/** How long one migration statement may take on the client side, in ms (a day: in effect, no limit). */
const MIGRATION_TIMEOUT = 86_400_000

/** The advisory lock key migrations run under (any fixed number; the two-key locks below are another key space). */
const MIGRATION_LOCK = 7_325_813_620_411
/** Namespaces of the transaction-level advisory locks (first key; the second is `hashtext(id)`). */
const LOCK = { user: 1, sso: 2, sid: 3, pair: 4 } as const

/** How long what ended is remembered at least (a request in flight is over long before), in ms. */
const ENDED_MIN_MS = 3_600_000

/**
 * BIGINT (ms timestamps, ids) as numbers, given with each query (so a pool of the app's works
 * too): pg's global parsers stay as the app set them.
 */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser
}

/** SQLSTATE classes and driver errors that mean the database cannot be reached or cannot answer now. */
const UNAVAILABLE_CLASSES = ['08', '53', '57', '58']
const UNAVAILABLE_CODES = new Set(['55P03', '40001', '40P01', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])
const UNAVAILABLE_MESSAGE = /connection terminated|timeout exceeded when trying to connect|not queryable|query read timeout|connection timeout/i

/** Whether `err` says the database is unreachable or overloaded (answer 503 and retry), not a bug or a constraint. */
export function isDatabaseUnavailable (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    if (UNAVAILABLE_CODES.has(code)) return true
    if (/^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_CLASSES.includes(code.slice(0, 2))
  }
  return UNAVAILABLE_MESSAGE.test((err as Error).message ?? '')
}

/** The error the gateway answers 503 with: the driver's error as its `cause`, never its text (it may name the host). */
function unavailable (err: unknown): Error {
  const error = new errors.UNAVAILABLE()
  error.cause = err
  return error
}

const isUniqueViolation = (err: unknown): boolean => (err as { code?: unknown }).code === '23505'

interface UserRow {
  id: string
  username: string
  password_hash: string | null
  is_active: boolean
  is_staff: boolean
  is_superuser: boolean
  email: string | null
  display_name: string | null
  attributes: Record<string, unknown>
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
  enabled: boolean
  fresh_login: boolean
  access: ServiceAccess | null
  fields: string[] | null
  display_name: string | null
  logo_url: string | null
  previous: PreviousSecrets | null
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
  isActive: r.is_active,
  isStaff: r.is_staff,
  isSuperuser: r.is_superuser,
  email: r.email,
  displayName: r.display_name,
  attributes: r.attributes,
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
  enabled: r.enabled,
  freshLogin: r.fresh_login,
  access: r.access,
  fields: r.fields,
  displayName: r.display_name,
  logoUrl: r.logo_url,
  previous: r.previous,
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

const json = (v: unknown): string | null => v === null ? null : JSON.stringify(v)

/** One named statement: prepared once per connection, then only its parameters travel. */
const q = (name: string, text: string): { name: string, text: string } => ({ name: `sso_${name}`, text })

const SQL = {
  insertUser: q('insert_user', `INSERT INTO users (id, username, password_hash, is_active, is_staff, is_superuser, email, display_name, attributes, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`),
  userById: q('user_by_id', 'SELECT * FROM users WHERE id = $1'),
  userByIdForUpdate: q('user_by_id_lock', 'SELECT * FROM users WHERE id = $1 FOR UPDATE'),
  userByName: q('user_by_name', 'SELECT * FROM users WHERE username = $1'),
  users: q('users', 'SELECT * FROM users WHERE username > $1 AND left(username, length($3)) = $3 ORDER BY username LIMIT $2'),
  updateUser: q('update_user', `UPDATE users SET username = $2, password_hash = $3, is_active = $4, is_staff = $5, is_superuser = $6,
    email = $7, display_name = $8, attributes = $9, updated_at = $10 WHERE id = $1`),
  deleteUser: q('delete_user', 'DELETE FROM users WHERE id = $1'),
  renameLogins: q('rename_logins', 'UPDATE service_logins SET username = $1 WHERE user_id = $2'),
  insertService: q('insert_service', `INSERT INTO services (id, base_url, event_url, token_hash, signing_secret, django_token, enabled,
      fresh_login, access, fields, display_name, logo_url, previous, previous_token_hash, name, protocol, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`),
  serviceById: q('service_by_id', 'SELECT * FROM services WHERE id = $1'),
  serviceByIdForUpdate: q('service_by_id_lock', 'SELECT * FROM services WHERE id = $1 FOR UPDATE'),
  serviceByName: q('service_by_name', 'SELECT * FROM services WHERE name = $1'),
  // The current call secret first, then a previous one still in its rotation window (the gateway checks `until`).
  serviceByToken: q('service_by_token', `(SELECT * FROM services WHERE token_hash = $1)
    UNION ALL (SELECT * FROM services WHERE previous_token_hash = $1) LIMIT 1`),
  services: q('services', 'SELECT * FROM services ORDER BY created_at, name'),
  updateService: q('update_service', `UPDATE services SET base_url = $2, event_url = $3, token_hash = $4, signing_secret = $5, django_token = $6,
    enabled = $7, fresh_login = $8, access = $9, fields = $10, display_name = $11, logo_url = $12, previous = $13, previous_token_hash = $14
    WHERE id = $1`),
  signedIn: q('signed_in', 'SELECT 1 FROM service_logins WHERE service_id = $1 AND user_id = $2'),
  serviceUsers: q('service_users', `SELECT l.user_id, l.username AS last_username, u.* FROM service_logins l LEFT JOIN users u ON u.id = l.user_id
    WHERE l.service_id = $1 AND l.user_id > $2 ORDER BY l.user_id LIMIT $3`),
  insertGroup: q('insert_group', 'INSERT INTO groups (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING'),
  deleteGroup: q('delete_group', 'DELETE FROM groups WHERE name = $1'),
  groupForShare: q('group_lock', 'SELECT 1 FROM groups WHERE name = $1 FOR SHARE'),
  groups: q('groups', 'SELECT name FROM groups ORDER BY name'),
  addMember: q('add_member', 'INSERT INTO group_members (group_name, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING'),
  removeMember: q('remove_member', 'DELETE FROM group_members WHERE group_name = $1 AND user_id = $2'),
  groupsOfUser: q('groups_of_user', 'SELECT group_name FROM group_members WHERE user_id = $1 ORDER BY group_name'),
  membersOf: q('members_of', 'SELECT u.* FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_name = $1 ORDER BY u.username'),
  insertToken: q('insert_token', `INSERT INTO request_tokens (hash, service_id, next_url, status, prompt, expires_at, created_at)
    VALUES ($1, $2, $3, 'pending', $4, $5, $6)`),
  token: q('token', 'SELECT * FROM request_tokens WHERE hash = $1 AND expires_at > $2'),
  // Never into an SSO session that has ended (the caller holds that SSO session's lock, shared).
  authenticate: q('authenticate', `UPDATE request_tokens SET status = 'authenticated', user_id = $1, sso_session = $2, session_ends_at = $3,
      auth_at = $4, code_hash = $5, expires_at = $6
    WHERE hash = $7 AND status = 'pending' AND expires_at > $8
      AND NOT EXISTS (SELECT 1 FROM ended_sso_sessions WHERE sso_session = $2) RETURNING service_id`),
  recordLogin: q('record_login', `INSERT INTO service_logins (service_id, user_id, last_at, username)
    VALUES ($1, $2, $3, (SELECT username FROM users WHERE id = $2))
    ON CONFLICT (service_id, user_id) DO UPDATE SET last_at = excluded.last_at, username = excluded.username`),
  recordSsoService: q('record_sso_service', `INSERT INTO sso_session_services (sso_session, service_id, user_id, last_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (sso_session, service_id) DO UPDATE SET last_at = excluded.last_at`),
  decline: q('decline', `UPDATE request_tokens SET status = 'declined' WHERE hash = $1 AND status = 'pending' AND expires_at > $2`),
  spend: q('spend', `UPDATE request_tokens SET status = 'used' WHERE hash = $1 AND service_id = $2 AND status = 'declined' AND expires_at > $3`),
  // The single-use check-and-set: of concurrent calls, the row lock lets exactly one see 'authenticated'.
  consume: q('consume', `UPDATE request_tokens SET status = 'used'
    WHERE hash = $1 AND service_id = $2 AND status = 'authenticated' AND expires_at > $3 AND (code_hash IS NULL OR code_hash = $4)
    RETURNING *`),
  burn: q('burn', `UPDATE request_tokens SET status = 'used' WHERE hash = $1`),
  burnOfSso: q('burn_of_sso', `UPDATE request_tokens SET status = 'used' WHERE sso_session = $1 AND status = 'authenticated'`),
  burnOfUser: q('burn_of_user', `UPDATE request_tokens SET status = 'used' WHERE user_id = $1 AND status = 'authenticated'`),
  pruneTokens: q('prune_tokens', 'DELETE FROM request_tokens WHERE expires_at <= $1'),
  ssoServices: q('sso_services', 'SELECT service_id, user_id, last_at FROM sso_session_services WHERE sso_session = $1 ORDER BY last_at, service_id'),
  lock: q('lock', 'SELECT pg_advisory_xact_lock($1::int, hashtext(k)) FROM unnest($2::text[]) k ORDER BY k'),
  // Shared locks in several namespaces in one round trip, taken in the order given (a volatile
  // function in the select list runs after ORDER BY).
  lockShared: q('lock_shared', `SELECT pg_advisory_xact_lock_shared(ns, hashtext(k))
    FROM unnest($1::int[], $2::text[]) WITH ORDINALITY AS l(ns, k, n) WHERE k IS NOT NULL ORDER BY n`),
  insertEvents: q('insert_events', `INSERT INTO outbox (id, service_id, user_key, payload, next_attempt_at, created_at)
    SELECT id, service_id, user_key, payload, $5, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
      WITH ORDINALITY AS e(id, service_id, user_key, payload, n) ORDER BY n`),
  // Due, unleased, and no earlier pending event of the same (service, user); rows another process
  // is claiming right now are skipped, not waited for.
  claim: q('claim', `WITH c AS (
      SELECT o.seq FROM outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= $1 AND (o.lease_until IS NULL OR o.lease_until <= $1)
        AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.service_id = o.service_id AND e.user_key = o.user_key AND e.seq < o.seq)
      ORDER BY o.seq LIMIT $3 FOR UPDATE SKIP LOCKED)
    UPDATE outbox SET lease_until = $2 FROM c WHERE outbox.seq = c.seq RETURNING outbox.*`),
  claimIds: q('claim_ids', `WITH c AS (
      SELECT o.seq FROM outbox o WHERE o.id = ANY($4::text[]) AND o.status = 'pending' AND o.next_attempt_at <= $1
        AND (o.lease_until IS NULL OR o.lease_until <= $1)
        AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'pending' AND e.service_id = o.service_id AND e.user_key = o.user_key AND e.seq < o.seq)
      ORDER BY o.seq LIMIT $3 FOR UPDATE SKIP LOCKED)
    UPDATE outbox SET lease_until = $2 FROM c WHERE outbox.seq = c.seq RETURNING outbox.*`),
  expedite: q('expedite', `UPDATE outbox SET next_attempt_at = $1 WHERE status = 'pending' AND service_id = $2 AND user_key = $3
    AND next_attempt_at > $1 AND (lease_until IS NULL OR lease_until <= $1)`),
  pendingOf: q('pending_of', `SELECT id FROM outbox WHERE status = 'pending' AND service_id = $1 AND user_key = $2 ORDER BY seq`),
  expediteService: q('expedite_service', `UPDATE outbox SET next_attempt_at = $1 WHERE status = 'pending' AND service_id = $2
    AND next_attempt_at > $1 AND (lease_until IS NULL OR lease_until <= $1)`),
  complete: q('complete', `UPDATE outbox SET status = 'delivered', lease_until = NULL, attempts = attempts + 1, last_error = NULL, failing_since = NULL WHERE id = $1`),
  fail: q('fail', `UPDATE outbox SET status = CASE WHEN $3::bigint IS NULL THEN 'dead' ELSE 'pending' END,
    next_attempt_at = COALESCE($3::bigint, next_attempt_at), lease_until = NULL, attempts = attempts + 1,
    last_error = $2, failing_since = COALESCE(failing_since, $4) WHERE id = $1`),
  release: q('release', 'UPDATE outbox SET lease_until = NULL WHERE id = $1'),
  eventsByStatus: q('events_by_status', 'SELECT * FROM outbox WHERE status = $1 ORDER BY seq LIMIT $2'),
  pruneDelivered: q('prune_delivered', `DELETE FROM outbox WHERE status = 'delivered' AND created_at < $1`),
  replay: q('replay', `UPDATE outbox SET status = 'pending', next_attempt_at = $1, lease_until = NULL WHERE id = $2 AND status = 'dead'`),
  deliveryStatus: q('delivery_status', `SELECT service_id,
      COUNT(*) FILTER (WHERE status = 'pending')::int AS pending, COUNT(*) FILTER (WHERE status = 'dead')::int AS dead,
      MIN(failing_since) FILTER (WHERE status = 'pending') AS failing_since
    FROM outbox WHERE status <> 'delivered' GROUP BY service_id ORDER BY service_id`),
  sessionGet: q('session_get', 'SELECT data, expires_at FROM gateway_sessions WHERE sid = $1'),
  // The caller holds the session's, its user's and its SSO session's locks (shared): an end
  // committed before is seen here, and an end under way waits for this write and then removes it.
  sessionSet: q('session_set', `INSERT INTO gateway_sessions (sid, data, expires_at, user_key, sso_session)
    SELECT $1, $2, $3, $4, $5
    WHERE NOT EXISTS (SELECT 1 FROM ended_sessions WHERE sid = $1)
      AND NOT EXISTS (SELECT 1 FROM ended_sso_sessions WHERE sso_session = $5)
    ON CONFLICT (sid) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at,
      user_key = excluded.user_key, sso_session = excluded.sso_session`),
  sessionEnd: q('session_end', `INSERT INTO ended_sessions (sid, expires_at)
    VALUES ($1, GREATEST($2, COALESCE((SELECT expires_at FROM gateway_sessions WHERE sid = $1), 0))) ON CONFLICT (sid) DO NOTHING`),
  sessionDelete: q('session_delete', 'DELETE FROM gateway_sessions WHERE sid = $1'),
  ssoOfUser: q('sso_of_user', `SELECT sso_session FROM gateway_sessions WHERE user_key = $1 AND sso_session IS NOT NULL
    UNION SELECT sso_session FROM sso_session_services WHERE user_id = $1`),
  ssoUser: q('sso_user', `SELECT user_key AS user_id FROM gateway_sessions WHERE sso_session = $1 AND user_key IS NOT NULL
    UNION SELECT user_id FROM sso_session_services WHERE sso_session = $1 LIMIT 1`),
  endSso: q('end_sso', `INSERT INTO ended_sso_sessions (sso_session, expires_at)
    VALUES ($1, GREATEST($2, COALESCE((SELECT MAX(expires_at) FROM gateway_sessions WHERE sso_session = $1), 0)))
    ON CONFLICT (sso_session) DO UPDATE SET expires_at = GREATEST(ended_sso_sessions.expires_at, excluded.expires_at)`),
  endSessionsOfSso: q('end_sessions_of_sso', `INSERT INTO ended_sessions (sid, expires_at)
    SELECT sid, GREATEST(expires_at, $2) FROM gateway_sessions WHERE sso_session = $1 ON CONFLICT (sid) DO NOTHING`),
  endSessionsOfUser: q('end_sessions_of_user', `INSERT INTO ended_sessions (sid, expires_at)
    SELECT sid, GREATEST(expires_at, $2) FROM gateway_sessions WHERE user_key = $1 ON CONFLICT (sid) DO NOTHING`),
  deleteSessionsOfSso: q('delete_sessions_of_sso', 'DELETE FROM gateway_sessions WHERE sso_session = $1'),
  deleteSessionsOfUser: q('delete_sessions_of_user', 'DELETE FROM gateway_sessions WHERE user_key = $1'),
  forgetSso: q('forget_sso', 'DELETE FROM sso_session_services WHERE sso_session = $1'),
  forgetSsoOfUser: q('forget_sso_of_user', 'DELETE FROM sso_session_services WHERE user_id = $1'),
  sessionsOfUser: q('sessions_of_user', 'SELECT data FROM gateway_sessions WHERE user_key = $1 AND expires_at > $2'),
  touchSso: q('touch_sso', `UPDATE gateway_sessions SET data = jsonb_set(data, '{seenAt}', to_jsonb($2::bigint)),
    expires_at = LEAST($2 + $3, COALESCE((data->>'createdAt')::bigint + $4, $2 + $3))
    WHERE sso_session = $1 AND expires_at > $2`),
  takeExpired: q('take_expired', `WITH x AS (SELECT sid FROM gateway_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    DELETE FROM gateway_sessions g USING x WHERE g.sid = x.sid RETURNING g.user_key, g.sso_session, g.expires_at`),
  pruneEnded: q('prune_ended', 'DELETE FROM ended_sessions WHERE expires_at <= $1'),
  pruneEndedSso: q('prune_ended_sso', 'DELETE FROM ended_sso_sessions WHERE expires_at <= $1'),
  auditAppend: q('audit_append', `INSERT INTO audit_log (at, kind, actor, user_name, service_name, detail)
    SELECT a, k, ac, u, s, d FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[]) WITH ORDINALITY AS r(a, k, ac, u, s, d, n)
    ORDER BY n`),
  // Each filter applies only when given; newest first, by id.
  auditList: q('audit_list', `SELECT * FROM audit_log WHERE ($1::text IS NULL OR user_name = $1) AND ($2::text IS NULL OR service_name = $2)
    AND ($3::text IS NULL OR kind = $3) AND ($4::bigint IS NULL OR at >= $4) AND ($5::bigint IS NULL OR at < $5)
    AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7`),
  auditPrune: q('audit_prune', 'DELETE FROM audit_log WHERE at < $1'),
  insertSetting: q('insert_setting', 'INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING'),
  setting: q('setting', 'SELECT value FROM settings WHERE key = $1')
} as const

type Sql = typeof SQL[keyof typeof SQL]

/** A connection inside one transaction (or one statement outside any). */
class Tx {
  constructor (readonly client: PoolClient) {}

  async rows<R> (sql: Sql, values: unknown[] = []): Promise<R[]> {
    return (await this.client.query({ ...sql, values, types: TYPES } satisfies QueryConfig)).rows as R[]
  }

  async row<R> (sql: Sql, values: unknown[] = []): Promise<R | undefined> {
    return (await this.rows<R>(sql, values))[0]
  }

  async count (sql: Sql, values: unknown[] = []): Promise<number> {
    // UPDATE/DELETE always report a count; `Number` reads pg's `number | null` type as a number.
    return Number((await this.client.query({ ...sql, values, types: TYPES })).rowCount)
  }

  /** Transaction-level advisory locks on `keys` in one namespace, in a fixed order (no deadlock between two takers). */
  async lock (space: number, keys: Iterable<string>): Promise<void> {
    const list = [...new Set(keys)]
    if (list.length > 0) await this.client.query({ ...SQL.lock, values: [space, list] })
  }

  /**
   * Shared transaction-level advisory locks, one per (namespace, key) with a key, in the order
   * given: callers list them user, SSO session, session, as the exclusive takers lock them.
   */
  async lockShared (locks: Array<[number, string | null]>): Promise<void> {
    await this.client.query({ ...SQL.lockShared, values: [locks.map((l) => l[0]), locks.map((l) => l[1])] })
  }
}

/** Pool settings of a `PostgresGatewayStore`. */
export interface PostgresGatewayStoreOptions {
  /**
   * `postgres://user:password@host:port/database` (every libpq URL parameter pg takes). Give this
   * or `pool`. @default none
   */
  connectionString?: string
  /** Your own pg Pool instead of one made from `connectionString` (the store then never closes it). @default none */
  pool?: Pool
  /** Most connections this process opens. @default 10 */
  max?: number
  /** A connection idle this long (ms) is closed. @default 30000 */
  idleTimeoutMillis?: number
  /** How long getting a connection may take (ms) before the operation fails with 503. @default 5000 */
  connectionTimeoutMillis?: number
  /**
   * Longest a statement may run (ms; PostgreSQL's `statement_timeout`, with the same limit on the
   * client's wait for an answer, plus a second) before the operation fails with 503. @default 5000
   */
  statementTimeout?: number
  /** Run the migrations when the store is first used (false: run `migratePostgres` yourself first). @default true */
  migrate?: boolean
}

/** What `migratePostgres` did. */
export interface MigrationResult {
  /** The schema version before. */
  from: number
  /** The schema version now (the newest this package knows). */
  to: number
}

/**
 * Brings a PostgreSQL database to the newest schema: each pending migration in its own
 * transaction, recorded in `schema_migrations`, under a session advisory lock so processes
 * starting together apply each migration once. Safe to run any number of times. Takes a
 * connection string or a pg Pool (left open).
 */
export async function migratePostgres (database: string | Pool): Promise<MigrationResult> {
  const pool = typeof database === 'string' ? new pg.Pool({ connectionString: database, max: 1 }) : database
  try {
    const client = await pool.connect()
    // Migrating a large table, or waiting for another process's migrations, may take longer
    // than the statement timeout the pool's operations have: none here.
    const run = async (text: string, values?: unknown[]): Promise<pg.QueryResult> =>
      await client.query({ text, values, query_timeout: MIGRATION_TIMEOUT } as QueryConfig)
    try {
      await run('SET statement_timeout = 0')
      await run('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
      try {
        await run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)')
        const from = ((await run('SELECT MAX(version) AS v FROM schema_migrations')).rows[0] as { v: number | null }).v ?? 0
        for (let version = from + 1; version <= MIGRATIONS.length; version++) {
          await run('BEGIN')
          try {
            await run(MIGRATIONS[version - 1] as string)
            await run('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, Date.now()])
            await run('COMMIT')
          } catch (err) {
            await run('ROLLBACK')
            throw err
          }
        }
        return { from, to: Math.max(from, MIGRATIONS.length) }
      } finally {
        await run('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
        await run('RESET statement_timeout')
      }
    } finally {
      client.release()
    }
  } finally {
    if (typeof database === 'string') await pool.end()
  }
}

/** Refuses options that cannot work, naming the option and the value. */
function checkOptions (o: PostgresGatewayStoreOptions): void {
  const fail = (name: string, detail: string): never => { throw new errors.INVALID_OPTION(`PostgresGatewayStore ${name}`, detail) }
  if (typeof o !== 'object' || o === null) fail('options', 'must be an object with connectionString or pool')
  if (o.pool === undefined && (typeof o.connectionString !== 'string' || !/^postgres(ql)?:\/\//i.test(o.connectionString))) {
    fail('connectionString', `must be a postgres:// URL (or give pool) (got ${o.connectionString === undefined ? 'none' : typeof o.connectionString === 'string' ? 'a string that is not one' : typeof o.connectionString})`)
  }
  for (const [name, min] of [['max', 1], ['idleTimeoutMillis', 0], ['connectionTimeoutMillis', 1], ['statementTimeout', 1]] as const) {
    const v = o[name]
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) fail(name, `must be a whole number of at least ${min} (got ${String(v)})`)
  }
}

/**
 * The gateway store on PostgreSQL (node-postgres), for several gateway processes sharing one
 * database: versioned migrations run on first use, named prepared statements, every change and
 * its events in one transaction, outbox claims with `FOR UPDATE SKIP LOCKED` that keep each
 * (service, user)'s order. A database that cannot be reached makes operations fail with
 * `FST_SSO_GATEWAY_UNAVAILABLE` (503); the pool reconnects when it is back.
 */
export class PostgresGatewayStore implements GatewayStore {
  /** The connection pool (for tests and tools; the gateway reads the database only through the store). */
  readonly pool: Pool
  readonly users: UserStore
  readonly groups: GroupStore
  readonly services: ServiceStore
  readonly tokens: RequestTokenStore
  readonly ssoSessions: SsoSessionStore
  readonly sessions: BrowserSessionStore
  readonly outbox: OutboxStore
  readonly audit: AuditStore
  readonly #ownPool: boolean
  readonly #migrate: boolean
  #ready: Promise<void> | undefined
  #closed = false

  constructor (options: PostgresGatewayStoreOptions) {
    checkOptions(options)
    const statementTimeout = options.statementTimeout ?? 5000
    this.#ownPool = options.pool === undefined
    this.#migrate = options.migrate ?? true
    const config: PoolConfig = {
      connectionString: options.connectionString,
      max: options.max ?? 10,
      idleTimeoutMillis: options.idleTimeoutMillis ?? 30_000,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
      statement_timeout: statementTimeout,
      query_timeout: statementTimeout + 1000,
      keepAlive: true,
      application_name: 'fastify-sso-gateway'
    }
    this.pool = options.pool ?? new pg.Pool(config)
    // An idle connection the server dropped (restart, network cut) is reported here; the pool
    // discards it and the next operation opens a new one. Without a listener it would crash the process.
    this.pool.on('error', () => {})
    const run = new Runner(this)
    this.users = pgUsers(run)
    this.groups = pgGroups(run)
    this.services = pgServices(run)
    this.tokens = pgTokens(run)
    this.ssoSessions = { services: async (ssoSession) => await run.one(async (tx) => await ssoServicesOf(tx, ssoSession)) }
    this.sessions = pgSessions(run)
    this.outbox = pgOutbox(run)
    this.audit = pgAudit(run)
  }

  /**
   * Resolves once the database is reachable and migrated (run once; a failure is retried on the
   * next call). Every operation waits for it; the gateway calls it at start to fail early.
   */
  async ready (): Promise<void> {
    this.#ready ??= (this.#migrate ? migratePostgres(this.pool).then(() => {}) : Promise.resolve())
      .catch((err: unknown) => {
        this.#ready = undefined
        throw isDatabaseUnavailable(err) ? unavailable(err) : err
      })
    await this.#ready
  }

  /** The schema version this database is at. */
  async schemaVersion (): Promise<number> {
    return await new Runner(this).one(async (tx) => Number((await tx.client.query<{ v: number }>('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0]?.v))
  }

  async setting (key: string, create: () => string): Promise<string> {
    // Processes starting together each try their value; the first insert wins and all read it back.
    return await new Runner(this).one(async (tx) => {
      await tx.count(SQL.insertSetting, [key, create(), Date.now()])
      return (await tx.row<{ value: string }>(SQL.setting, [key]))?.value as string
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#ownPool) await this.pool.end()
  }
}

/** Connections that have their 'error' listener. */
const QUIETED = new WeakSet<PoolClient>()

/** Runs operations on pooled connections: reads and single statements as they are, changes in a transaction. */
class Runner {
  constructor (readonly store: PostgresGatewayStore) {}

  async #client (): Promise<PoolClient> {
    await this.store.ready()
    let client: PoolClient
    try {
      client = await this.store.pool.connect()
    } catch (err) {
      throw unavailable(err)
    }
    // A connection lost while checked out is also reported as an 'error' event (the operation
    // using it fails on its own): without a listener it would crash the process.
    if (!QUIETED.has(client)) {
      QUIETED.add(client)
      client.on('error', () => {})
    }
    return client
  }

  /** A read, or one statement (atomic by itself). */
  async one<T> (fn: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.#client()
    let result: T
    try {
      result = await fn(new Tx(client))
    } catch (err) {
      // A connection that failed is dropped, not handed to the next operation.
      const down = isDatabaseUnavailable(err)
      client.release(down)
      throw down ? unavailable(err) : err
    }
    client.release()
    return result
  }

  /** A change: BEGIN … COMMIT on one connection; anything failing rolls all of it back. */
  async write<T> (fn: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.#client()
    let result: T
    try {
      await client.query('BEGIN')
      result = await fn(new Tx(client))
      await client.query('COMMIT')
    } catch (err) {
      // A connection that cannot even roll back is dropped, not handed to the next operation.
      const broken = await client.query('ROLLBACK').then(() => false, () => true)
      client.release(broken)
      throw isDatabaseUnavailable(err) ? unavailable(err) : err
    }
    client.release()
    return result
  }
}

async function insertEvents (tx: Tx, events: NewOutboxEvent[], now: number): Promise<void> {
  if (events.length === 0) return
  // One lock per (service, user), held to commit: the events of one pair get their seq in commit
  // order, so a claimer never sees a later one without the earlier.
  await tx.lock(LOCK.pair, events.map((e) => `${e.serviceId}\n${e.userKey}`))
  await tx.count(SQL.insertEvents, [events.map((e) => e.id), events.map((e) => e.serviceId), events.map((e) => e.userKey), events.map((e) => e.payload), now])
}

async function ssoServicesOf (tx: Tx, ssoSession: string): Promise<SsoSessionService[]> {
  return (await tx.rows<{ service_id: string, user_id: string, last_at: number }>(SQL.ssoServices, [ssoSession]))
    .map((r) => ({ serviceId: r.service_id, userId: r.user_id, lastAt: r.last_at }))
}

/**
 * Ends SSO sessions inside a transaction, each under its lock (exclusive): their browser sessions
 * are deleted (and never written back), their reach forgotten, their authenticated tokens burnt.
 */
async function endSsoSessions (tx: Tx, ids: Array<{ id: string, userId: string }>, now: number): Promise<EndedSessions> {
  const ended: EndedSessions = { browserSessions: 0, ssoSessions: [] }
  const floor = now + ENDED_MIN_MS
  await tx.lock(LOCK.sso, ids.map((s) => s.id))
  for (const { id, userId } of ids) {
    const services = (await ssoServicesOf(tx, id)).map((s) => s.serviceId)
    await tx.count(SQL.endSso, [id, floor])
    await tx.count(SQL.endSessionsOfSso, [id, floor])
    ended.browserSessions += await tx.count(SQL.deleteSessionsOfSso, [id])
    await tx.count(SQL.forgetSso, [id])
    await tx.count(SQL.burnOfSso, [id])
    ended.ssoSessions.push({ id, userId, services })
  }
  return ended
}

/** Ends every session of a user (but `except`), as `endSsoSessions`; without `except`, sessions without an SSO session too. */
async function endUserSessions (tx: Tx, userId: string, now: number, except?: string): Promise<EndedSessions> {
  await tx.lock(LOCK.user, [userId])
  const ids = (await tx.rows<{ sso_session: string }>(SQL.ssoOfUser, [userId])).map((r) => r.sso_session).filter((id) => id !== except).sort()
  const ended = await endSsoSessions(tx, ids.map((id) => ({ id, userId })), now)
  if (except === undefined) {
    await tx.count(SQL.endSessionsOfUser, [userId, now + ENDED_MIN_MS])
    ended.browserSessions += await tx.count(SQL.deleteSessionsOfUser, [userId])
    await tx.count(SQL.forgetSsoOfUser, [userId])
    await tx.count(SQL.burnOfUser, [userId])
  }
  return ended
}

const userValues = (u: Omit<UserRecord, 'createdAt'>): unknown[] => [
  u.id, u.username, u.passwordHash, u.isActive, u.isStaff, u.isSuperuser, u.email, u.displayName, JSON.stringify(u.attributes), u.updatedAt
]

function pgUsers (run: Runner): UserStore {
  const byId = async (tx: Tx, id: string, forUpdate = false): Promise<UserRecord | null> => {
    const row = await tx.row<UserRow>(forUpdate ? SQL.userByIdForUpdate : SQL.userById, [id])
    return row === undefined ? null : toUser(row)
  }
  return {
    create: async (user: NewUser) => await run.one(async (tx) => {
      const now = Date.now()
      try {
        await tx.count(SQL.insertUser, userValues({ ...user, updatedAt: now }))
      } catch (err) {
        if (isUniqueViolation(err)) throw new errors.USER_EXISTS(user.username)
        throw err
      }
      return { ...user, createdAt: now, updatedAt: now }
    }),
    byId: async (id) => await run.one(async (tx) => await byId(tx, id)),
    list: async (after, limit, prefix = '') => await run.one(async (tx) => (await tx.rows<UserRow>(SQL.users, [after, limit, prefix])).map(toUser)),
    byUsername: async (username) => await run.one(async (tx) => {
      const row = await tx.row<UserRow>(SQL.userByName, [username])
      return row === undefined ? null : toUser(row)
    }),
    update: async (id: string, patch: UserPatch, events?: (user: UserRecord, ended: EndedSessions) => NewOutboxEvent[], end?: EndUserSessions) =>
      await run.write(async (tx): Promise<UserRecord | null> => {
        // Locks before any row is written (the session locks first), so no two changes wait on each other in a circle.
        if (end !== undefined) await tx.lock(LOCK.user, [id])
        const old = await byId(tx, id, true)
        if (old === null) return null
        const now = Date.now()
        const ended = end === undefined ? { browserSessions: 0, ssoSessions: [] } : await endUserSessions(tx, id, now, end.exceptSsoSession)
        const user: UserRecord = { ...old, ...patch, updatedAt: now }
        try {
          await tx.count(SQL.updateUser, userValues(user))
        } catch (err) {
          if (isUniqueViolation(err)) throw new errors.USER_EXISTS(user.username)
          throw err
        }
        // Services hear of a rename in the same transaction: what they know is the new name.
        if (patch.username !== undefined) await tx.count(SQL.renameLogins, [user.username, id])
        if (events !== undefined) await insertEvents(tx, events(user, ended), now)
        return user
      }),
    delete: async (id: string, events: EventsOf<EndedSessions>) => await run.write(async (tx): Promise<EndedSessions | null> => {
      const now = Date.now()
      const ended = await endUserSessions(tx, id, now)
      if (await tx.count(SQL.deleteUser, [id]) === 0) {
        // Nothing to delete: nothing of the above is kept either.
        throw new NothingToDelete()
      }
      await insertEvents(tx, events(ended), now)
      return ended
    }).catch((err: unknown) => {
      if (err instanceof NothingToDelete) return null
      throw err
    })
  }
}

/** Rolls back a deletion that found no row. */
class NothingToDelete extends Error {}

function pgGroups (run: Runner): GroupStore {
  const ofUser = async (tx: Tx, userId: string): Promise<string[]> =>
    (await tx.rows<{ group_name: string }>(SQL.groupsOfUser, [userId])).map((r) => r.group_name)
  return {
    create: async (name) => { await run.one(async (tx) => await tx.count(SQL.insertGroup, [name, Date.now()])) },
    delete: async (name) => await run.one(async (tx) => await tx.count(SQL.deleteGroup, [name]) === 1),
    list: async () => await run.one(async (tx) => (await tx.rows<{ name: string }>(SQL.groups)).map((r) => r.name)),
    setMember: async (group, userId, member, events) => await run.write(async (tx) => {
      if (await tx.row(SQL.groupForShare, [group]) === undefined) throw new errors.INVALID_GROUP(JSON.stringify(group))
      if (member) await tx.count(SQL.addMember, [group, userId])
      else await tx.count(SQL.removeMember, [group, userId])
      const groups = await ofUser(tx, userId)
      await insertEvents(tx, events(groups), Date.now())
      return groups
    }),
    ofUser: async (userId) => await run.one(async (tx) => await ofUser(tx, userId)),
    members: async (group) => await run.one(async (tx) => (await tx.rows<UserRow>(SQL.membersOf, [group])).map(toUser))
  }
}

const serviceValues = (s: NewService): unknown[] => [
  s.id, s.baseUrl, s.eventUrl, s.tokenHash, s.signingSecret, s.djangoToken, s.enabled, s.freshLogin, json(s.access), json(s.fields),
  s.displayName, s.logoUrl, json(s.previous ?? null), s.previous?.tokenHash ?? null
]

function pgServices (run: Runner): ServiceStore {
  const one = (row: ServiceRow | undefined): ServiceRecord | null => row === undefined ? null : toService(row)
  return {
    create: async (service) => await run.one(async (tx) => {
      const createdAt = Date.now()
      try {
        await tx.count(SQL.insertService, [...serviceValues(service), service.name, service.protocol, createdAt])
      } catch (err) {
        if (isUniqueViolation(err)) throw new errors.SERVICE_EXISTS(service.name)
        throw err
      }
      return { ...service, previous: service.previous ?? null, createdAt }
    }),
    byId: async (id) => await run.one(async (tx) => one(await tx.row<ServiceRow>(SQL.serviceById, [id]))),
    byName: async (name) => await run.one(async (tx) => one(await tx.row<ServiceRow>(SQL.serviceByName, [name]))),
    byTokenHash: async (tokenHash) => await run.one(async (tx) => one(await tx.row<ServiceRow>(SQL.serviceByToken, [tokenHash]))),
    list: async () => await run.one(async (tx) => (await tx.rows<ServiceRow>(SQL.services)).map(toService)),
    update: async (id: string, patch: ServicePatch, events?: EventsOf<ServiceRecord>) => await run.write(async (tx): Promise<ServiceRecord | null> => {
      const old = one(await tx.row<ServiceRow>(SQL.serviceByIdForUpdate, [id]))
      if (old === null) return null
      const service: ServiceRecord = { ...old, ...patch }
      await tx.count(SQL.updateService, serviceValues(service))
      if (events !== undefined) await insertEvents(tx, events(service), Date.now())
      return service
    }),
    hasUser: async (serviceId, userId) => await run.one(async (tx) => await tx.row(SQL.signedIn, [serviceId, userId]) !== undefined),
    users: async (serviceId, after, limit) => await run.one(async (tx): Promise<ServiceUser[]> =>
      (await tx.rows<UserRow & { user_id: string, last_username: string }>(SQL.serviceUsers, [serviceId, after, limit]))
        .map((r) => ({ userId: r.user_id, lastUsername: r.last_username, user: r.id === null ? null : toUser(r) })))
  }
}

function pgTokens (run: Runner): RequestTokenStore {
  const one = (row: TokenRow | undefined): RequestTokenRecord | null => row === undefined ? null : toToken(row)
  return {
    create: async (t: NewRequestToken) => {
      await run.one(async (tx) => await tx.count(SQL.insertToken, [t.hash, t.serviceId, t.nextUrl, t.prompt, t.expiresAt, t.createdAt]))
    },
    get: async (hash, now) => await run.one(async (tx) => one(await tx.row<TokenRow>(SQL.token, [hash, now]))),
    authenticate: async (hash: string, by: TokenAuthentication, now: number, events?: EventsOf<string>) => await run.write(async (tx): Promise<boolean> => {
      // Shared locks: an end of this user's or SSO session's sessions under way finishes first (and is then seen).
      await tx.lockShared([[LOCK.user, by.userId], [LOCK.sso, by.ssoSession]])
      const row = await tx.row<{ service_id: string }>(SQL.authenticate,
        [by.userId, by.ssoSession, by.sessionEndsAt, by.authAt, by.codeHash, by.expiresAt, hash, now])
      if (row === undefined) return false
      await tx.count(SQL.recordLogin, [row.service_id, by.userId, now])
      await tx.count(SQL.recordSsoService, [by.ssoSession, row.service_id, by.userId, now])
      if (events !== undefined) await insertEvents(tx, events(row.service_id), now)
      return true
    }),
    decline: async (hash, now) => await run.one(async (tx) => await tx.count(SQL.decline, [hash, now]) === 1),
    spendDeclined: async (hash, serviceId, now) => await run.one(async (tx) => await tx.count(SQL.spend, [hash, serviceId, now]) === 1),
    consume: async (hash, serviceId, now, codeHash) => await run.one(async (tx) => one(await tx.row<TokenRow>(SQL.consume, [hash, serviceId, now, codeHash]))),
    burn: async (hash) => { await run.one(async (tx) => await tx.count(SQL.burn, [hash])) },
    prune: async (now) => await run.one(async (tx) => await tx.count(SQL.pruneTokens, [now]))
  }
}

function pgSessions (run: Runner): BrowserSessionStore {
  return {
    get: async (sid, now) => await run.one(async (tx): Promise<Session | null> => {
      // An expired row is not returned, and not deleted here either: `takeExpired` removes it,
      // so the gateway can still end its SSO session at the services.
      const row = await tx.row<{ data: Session, expires_at: number }>(SQL.sessionGet, [sid])
      return row !== undefined && row.expires_at > now ? row.data : null
    }),
    set: async (sid: string, session: Session, index: SessionIndex) => {
      await run.write(async (tx) => {
        await tx.lockShared([[LOCK.user, index.user], [LOCK.sso, index.ssoSession], [LOCK.sid, sid]])
        await tx.count(SQL.sessionSet, [sid, JSON.stringify(session), index.expiresAt, index.user, index.ssoSession])
      })
    },
    destroy: async (sid) => {
      await run.write(async (tx) => {
        await tx.lock(LOCK.sid, [sid])
        await tx.count(SQL.sessionEnd, [sid, Date.now() + ENDED_MIN_MS])
        await tx.count(SQL.sessionDelete, [sid])
      })
    },
    destroyByUser: async (userId, events, exceptSsoSession) => await run.write(async (tx) => {
      const now = Date.now()
      const ended = await endUserSessions(tx, userId, now, exceptSsoSession)
      await insertEvents(tx, events(ended), now)
      return ended
    }),
    destroyBySsoSession: async (ssoSession, events) => await run.write(async (tx) => {
      const now = Date.now()
      await tx.lock(LOCK.sso, [ssoSession])
      const owner = await tx.row<{ user_id: string }>(SQL.ssoUser, [ssoSession])
      const ended = await endSsoSessions(tx, [{ id: ssoSession, userId: owner?.user_id ?? '' }], now)
      await insertEvents(tx, events(ended), now)
      return ended
    }),
    listByUser: async (userId, now) => await run.one(async (tx) =>
      (await tx.rows<{ data: Session }>(SQL.sessionsOfUser, [userId, now])).map((r) => r.data)),
    touch: async (ssoSession, now, lifetime) => await run.one(async (tx) =>
      await tx.count(SQL.touchSso, [ssoSession, now, lifetime.idleTimeout, lifetime.absoluteTimeout])),
    takeExpired: async (now, limit) => await run.write(async (tx) => {
      await tx.count(SQL.pruneEnded, [now])
      await tx.count(SQL.pruneEndedSso, [now])
      // RETURNING comes in no particular order: oldest first, as the contract says.
      return (await tx.rows<{ user_key: string | null, sso_session: string | null, expires_at: number }>(SQL.takeExpired, [now, limit]))
        .sort((a, b) => a.expires_at - b.expires_at).map((r) => ({ user: r.user_key, ssoSession: r.sso_session }))
    })
  }
}

function pgOutbox (run: Runner): OutboxStore {
  return {
    enqueue: async (events) => { await run.write(async (tx) => { await insertEvents(tx, events, Date.now()) }) },
    claim: async (now, leaseMs, limit, onlyIds) => await run.one(async (tx): Promise<OutboxEvent[]> => {
      const rows = onlyIds === undefined
        ? await tx.rows<OutboxRow>(SQL.claim, [now, now + leaseMs, limit])
        : await tx.rows<OutboxRow>(SQL.claimIds, [now, now + leaseMs, limit, onlyIds])
      return rows.sort((a, b) => a.seq - b.seq).map(toEvent)
    }),
    expedite: async (serviceId, userKey, now) => await run.write(async (tx): Promise<string[]> => {
      await tx.count(SQL.expedite, [now, serviceId, userKey])
      return (await tx.rows<{ id: string }>(SQL.pendingOf, [serviceId, userKey])).map((r) => r.id)
    }),
    expediteService: async (serviceId, now) => await run.one(async (tx) => await tx.count(SQL.expediteService, [now, serviceId])),
    complete: async (id) => { await run.one(async (tx) => await tx.count(SQL.complete, [id])) },
    fail: async (id, error, nextAttemptAt, now) => { await run.one(async (tx) => await tx.count(SQL.fail, [id, error, nextAttemptAt, now])) },
    release: async (id) => { await run.one(async (tx) => await tx.count(SQL.release, [id])) },
    list: async (status, limit) => await run.one(async (tx) => (await tx.rows<OutboxRow>(SQL.eventsByStatus, [status, limit])).map(toEvent)),
    prune: async (before) => await run.one(async (tx) => await tx.count(SQL.pruneDelivered, [before])),
    replay: async (id, now) => await run.one(async (tx) => await tx.count(SQL.replay, [now, id]) === 1),
    status: async () => await run.one(async (tx) =>
      (await tx.rows<{ service_id: string, pending: number, dead: number, failing_since: number | null }>(SQL.deliveryStatus))
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
  detail: Record<string, unknown>
}

function pgAudit (run: Runner): AuditStore {
  return {
    append: async (records) => {
      await run.one(async (tx) => await tx.count(SQL.auditAppend, [records.map((r) => r.at), records.map((r) => r.kind), records.map((r) => r.actor),
        records.map((r) => r.user), records.map((r) => r.service), records.map((r) => JSON.stringify(r.detail))]))
    },
    list: async (f) => await run.one(async (tx) => (await tx.rows<AuditRow>(SQL.auditList,
      [f.user ?? null, f.service ?? null, f.kind ?? null, f.since ?? null, f.until ?? null, f.beforeId ?? null, f.limit]))
      .map((r): AuditRecord => ({ id: r.id, at: r.at, kind: r.kind, actor: r.actor, user: r.user_name, service: r.service_name, detail: r.detail }))),
    prune: async (before) => await run.one(async (tx) => await tx.count(SQL.auditPrune, [before]))
  }
}
