import t, { type Test } from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Session } from 'fastify'
import type { SessionIndex } from 'fastify-sso-protocol'
import { RedisServiceStore, SqliteSessionStore } from '../src/index.js'
import { ServiceDatabase } from '../src/session.js'
import { testRedis } from '../../../test/helpers/redis.js'
import { serviceStateSuite, sessionStoreSuite } from './session-store-suite.js'

type Data = Record<string, unknown> & { user?: string, sso?: string, expiresAt?: number, n?: number }

// The index used here reads plain fields, so each test controls expiry exactly.
const index = (s: Data): SessionIndex => ({
  user: typeof s.user === 'string' ? s.user : null,
  ssoSession: typeof s.sso === 'string' ? s.sso : null,
  expiresAt: typeof s.expiresAt === 'number' ? s.expiresAt : Number.MAX_SAFE_INTEGER
})

const NOW = 1_000_000

function open (t: Test, options: { table?: string } = {}) {
  const file = join(t.testdir(), 'sessions.db')
  const db = new Database(file)
  t.teardown(() => { if (db.open) db.close() })
  const store = new SqliteSessionStore({ db, ...options })
  // Test data is any JSON object; the store keeps what @fastify/session hands it.
  const set = async (sid: string, s: Data): Promise<void> => { await store.set(sid, s as unknown as Session, index(s)) }
  const get = async (sid: string): Promise<unknown> => await store.get(sid, NOW)
  const users = async (user: string): Promise<number> => (await store.listByUser(user, NOW)).length
  const count = () => (db.prepare(`SELECT count(*) AS n FROM ${options.table ?? 'sessions'}`).get() as { n: number }).n
  return { db, file, store, get, set, users, count }
}

t.test('SqliteSessionStore: the shared suite', async (t) => {
  sessionStoreSuite(t, (t) => open(t).store)
})

t.test('RedisServiceStore: the shared suite', async (t) => {
  const { redis, prefix } = testRedis(t, 'sessions')
  let n = 0
  sessionStoreSuite(t, () => new RedisServiceStore({ redis, prefix: `${prefix}${n++}:` }))
})

t.test('ServiceDatabase (SQLite): the shared state suite', async (t) => {
  serviceStateSuite(t, (t) => {
    const db = new ServiceDatabase(join(t.testdir(), 'service.sqlite'))
    t.teardown(() => { db.close() })
    return db
  })
})

t.test('RedisServiceStore: the shared state suite', async (t) => {
  const { redis, prefix } = testRedis(t, 'state')
  let n = 0
  serviceStateSuite(t, () => {
    const db = new RedisServiceStore({ redis, prefix: `${prefix}${n++}:` })
    t.teardown(() => { db.close() })
    return db
  })
})

t.test('SQLite: expired sessions are not returned; prune deletes them and what it remembers of ended ones', async (t) => {
  const { store, get, set, count, db } = open(t)
  await set('old', { user: 'alice', expiresAt: NOW - 1 })
  await set('new', { user: 'alice', expiresAt: NOW + 1 })
  t.equal(await get('old'), null)
  t.same(await get('new'), { user: 'alice', expiresAt: NOW + 1 })
  t.equal(await store.prune(NOW), 1)
  t.equal(count(), 1)
  await store.destroy('new')
  const ended = () => (db.prepare('SELECT count(*) AS n FROM sessions_ended').get() as { n: number }).n
  t.equal(ended(), 1)
  await store.prune(Date.now() + 2 * 3_600_000)
  t.equal(ended(), 0, 'forgotten past its expiry and the in-flight margin')
})

t.test('table name: custom names work, unsafe names throw', async (t) => {
  const { set, count } = open(t, { table: 'my_sessions' })
  await set('a', { user: 'alice' })
  t.equal(count(), 1)
  t.throws(() => new SqliteSessionStore({ db: new Database(':memory:'), table: 'x; DROP TABLE y' }), TypeError)
})

t.test('corrupt stored data rejects get', async (t) => {
  const { store, db } = open(t)
  db.prepare("INSERT INTO sessions (sid, data, expires_at) VALUES ('bad', '{not json', ?)").run(Number.MAX_SAFE_INTEGER)
  await t.rejects(store.get('bad', NOW), SyntaxError)
})

t.test('lookups by user, SSO session and expiry use the indexes, never a scan', async (t) => {
  const { db, set } = open(t)
  for (let i = 0; i < 200; i++) await set(`s${i}`, { user: `u${i % 20}`, sso: `g${i % 50}` })
  db.exec('ANALYZE')
  const plan = (sql: string, ...args: unknown[]) =>
    (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join('\n')
  const queries: Array<[string, string, unknown[]]> = [
    ['destroyByUser', 'DELETE FROM sessions WHERE user_key = ?', ['u1']],
    ['destroyBySsoSession', 'DELETE FROM sessions WHERE sso_session = ?', ['g1']],
        ['listByUser', 'SELECT data FROM sessions WHERE user_key = ? AND expires_at > ?', ['u1', 0]],
    ['prune', 'DELETE FROM sessions WHERE expires_at <= ?', [0]],
    ['rekeyUser', 'UPDATE sessions SET user_key = ?, data = json_set(data, ?, ?) WHERE user_key = ?', ['u2', '$.user', 'u2', 'u1']],
    ['get', 'SELECT data, expires_at FROM sessions WHERE sid = ?', ['s1']]
  ]
  for (const [name, sql, args] of queries) {
    const detail = plan(sql, ...args)
    t.match(detail, /USING (COVERING )?INDEX|USING PRIMARY KEY/, `${name}: ${detail}`)
    t.notMatch(detail, /^SCAN/m, `${name} does not scan`)
  }
  t.match(plan('DELETE FROM sessions WHERE user_key = ?', 'u1'), /sessions_user/, 'destroyByUser uses sessions_user')
  t.match(plan('DELETE FROM sessions WHERE sso_session = ?', 'g1'), /sessions_sso/, 'destroyBySsoSession uses sessions_sso')
})

