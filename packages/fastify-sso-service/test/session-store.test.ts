import t, { type Test } from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Session } from 'fastify'
import type { SessionIndex } from 'fastify-sso-protocol'
import { SqliteSessionStore } from '../src/index.js'

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

t.test('set / get / destroy', async (t) => {
  const { store, get, set, count } = open(t)
  t.equal(await get('nope'), null)
  await set('a', { user: 'alice', n: 1 })
  t.same(await get('a'), { user: 'alice', n: 1 })
  await set('a', { user: 'alice', n: 2 })
  t.same(await get('a'), { user: 'alice', n: 2 }, 'replaced')
  await store.destroy('a')
  t.equal(await get('a'), null)
  await store.destroy('a')
  t.equal(count(), 0)
})

t.test('an ended session is never written back: a late save of a request in flight writes nothing', async (t) => {
  const { store, get, set } = open(t)
  await set('a', { user: 'alice', sso: 'g1' })
  await set('b', { user: 'alice', sso: 'g2' })
  await set('c', { user: 'bob', sso: 'g3' })
  await set('d', { user: 'carol' })
  t.equal(await store.destroyBySsoSession('g1'), 1)
  t.equal(await store.destroyByUser('alice'), 1)
  await store.destroy('c')
  await set('a', { user: 'alice', sso: 'g1', n: 1 })
  await set('b', { user: 'alice', sso: 'g2', n: 1 })
  await set('c', { user: 'bob', sso: 'g3', n: 1 })
  t.equal(await get('a'), null, 'ended with its SSO session: not resurrected')
  t.equal(await get('b'), null, 'ended with its user: not resurrected')
  t.equal(await get('c'), null, 'destroyed (logout): not resurrected')
  t.same(await get('d'), { user: 'carol' }, 'others untouched')
  await set('e', { user: 'alice', sso: 'g1' })
  t.same(await get('e'), { user: 'alice', sso: 'g1' }, 'a new session id is a new session')
})

t.test('expired sessions are not returned; prune deletes them and what it remembers of ended ones', async (t) => {
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

t.test('destroyByUser and destroyBySsoSession end exactly the right sessions; listByUser lists live ones', async (t) => {
  const { store, set, users } = open(t)
  await set('a1', { user: 'alice', sso: 'g1' })
  await set('a2', { user: 'alice', sso: 'g2' })
  await set('a3', { user: 'alice', sso: 'g2', expiresAt: NOW - 1 })
  await set('b1', { user: 'bob', sso: 'g3' })
  t.equal(await users('alice'), 2, 'expired not listed')
  t.equal(await store.destroyBySsoSession('g2'), 2)
  t.equal(await users('alice'), 1)
  t.equal(await store.destroyByUser('alice'), 1)
  t.equal(await store.destroyByUser('alice'), 0)
  t.equal(await users('bob'), 1)
})

t.test('issuedBefore: only sessions issued at or before it end (or without issuedAt); the ones it ends are not written back', async (t) => {
  const { store, get, set } = open(t)
  await set('early', { user: 'alice', sso: 'g1', issuedAt: 100 })
  await set('at', { user: 'alice', sso: 'g2', issuedAt: 200 })
  await set('late', { user: 'alice', sso: 'g1', issuedAt: 300 })
  await set('untimed', { user: 'alice', sso: 'g2' })
  t.equal(await store.destroyBySsoSession('g1', 200), 1, 'g1: only the one issued before')
  t.equal(await get('early'), null)
  t.same(await get('late'), { user: 'alice', sso: 'g1', issuedAt: 300 }, 'a sign-in after the sign-out survives it')
  t.equal(await store.destroyByUser('alice', 200), 2, 'at the instant, and the one without a time')
  t.equal(await get('at'), null)
  t.equal(await get('untimed'), null)
  t.match(await get('late'), { issuedAt: 300 })
  await set('early', { user: 'alice', sso: 'g1', issuedAt: 100, n: 1 })
  t.equal(await get('early'), null, 'ended: a late save writes nothing')
  await set('late', { user: 'alice', sso: 'g1', issuedAt: 300, n: 1 })
  t.match(await get('late'), { n: 1 }, 'the survivor is still saved')
  t.equal(await store.destroyByUser('alice'), 1, 'without issuedBefore: all')
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

t.test('rekeyUser moves a user\'s sessions to a new name, index and data', async (t) => {
  const { store, get, set, users } = open(t)
  await set('a1', { user: 'alice', sso: 'g1', n: 1 })
  await set('a2', { user: 'alice', n: 2, account: { username: 'alice', team: 'x' } })
  await set('b1', { user: 'bob', n: 3 })
  t.equal(await store.rekeyUser('alice', 'alicia'), 2)
  t.same(await get('a1'), { user: 'alicia', sso: 'g1', n: 1 }, 'the data follows ($.user by default)')
  t.equal(await users('alice'), 0)
  t.equal(await users('alicia'), 2)
  t.same(await get('b1'), { user: 'bob', n: 3 }, 'other users untouched')
  t.equal(await store.rekeyUser('alicia', 'ally', ['$.user', '$.account.username']), 2)
  t.same(await get('a2'), { user: 'ally', n: 2, account: { username: 'ally', team: 'x' } }, 'nested fields too')
  t.equal(await store.rekeyUser('alicia', 'x', ['$.user', '$.account.username']), 0, 'nobody left under the old name (cached statement)')
  t.equal(await store.destroyByUser('ally'), 2, 'the index follows')
  t.equal(await store.rekeyUser('nobody', 'x'), 0)
  await t.rejects(store.rekeyUser('a', 'b', []), TypeError)
  await t.rejects(store.rekeyUser('a', 'b', ['$.user\'); DROP TABLE sessions; --']), TypeError, 'paths are checked, never pasted')
  await t.rejects(store.rekeyUser('a', 'b', ['user']), TypeError)
})

t.test('rekeyUser with `only` moves one user\'s sessions, not those of another user who held the name', async (t) => {
  const { store, set, get, users } = open(t)
  // Two users swapped names; the rename of usr_B (bob -> alice) was applied first.
  await set('a1', { user: 'alice', account: { user_id: 'usr_A', username: 'alice' } })
  await set('b1', { user: 'alice', account: { user_id: 'usr_B', username: 'alice' } })
  await set('legacy', { user: 'alice' })
  t.equal(await store.rekeyUser('alice', 'carol', ['$.user', '$.account.username'], { path: '$.account.user_id', value: 'usr_A' }), 2,
    'usr_A\'s session and one that records no id')
  t.match(await get('a1'), { user: 'carol', account: { user_id: 'usr_A', username: 'carol' } })
  t.match(await get('b1'), { user: 'alice', account: { user_id: 'usr_B', username: 'alice' } }, 'usr_B keeps the name it now holds')
  t.match(await get('legacy'), { user: 'carol' })
  t.same(await users('alice'), 1)
  await t.rejects(store.rekeyUser('a', 'b', ['$.user'], { path: "$.x') OR 1=1 --", value: 'v' }), TypeError, 'only plain JSON paths')
})

t.test('the saves of one event-loop turn share one commit; one that cannot be written fails alone', async (t) => {
  const { db, set, get, count } = open(t)
  // A real constraint refusing one row: its save fails, the others of the same turn are kept.
  db.exec("CREATE TRIGGER refuse_bad BEFORE INSERT ON sessions WHEN NEW.sid = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END")
  const results = await Promise.allSettled([set('a', { user: 'alice' }), set('bad', { user: 'mallory' }), set('b', { user: 'bob' })])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.match((results[1] as PromiseRejectedResult).reason, { message: /refused/ })
  t.same(await get('a'), { user: 'alice' })
  t.same(await get('b'), { user: 'bob' })
  t.equal(count(), 2)

  // Many saves at once: all written, the last save of a session wins.
  await Promise.all(Array.from({ length: 50 }, async (_, i) => await set(`s${i % 10}`, { user: 'carol', n: i })))
  t.same(await get('s3'), { user: 'carol', n: 43 })
  t.equal(count(), 12)
})
