import t, { type Test } from 'tap'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { SqliteSessionStore, type SessionIndex, type StoredSession } from '../src/index.js'

interface Session extends StoredSession {
  user?: string
  sso?: string
  expiresAt?: number
  n?: number
}

// The index used here reads plain fields, so each test controls expiry exactly.
const index = (s: StoredSession): SessionIndex => ({
  user: typeof s.user === 'string' ? s.user : null,
  ssoSession: typeof s.sso === 'string' ? s.sso : null,
  expiresAt: typeof s.expiresAt === 'number' ? s.expiresAt : Number.MAX_SAFE_INTEGER
})

function open (t: Test, options: { table?: string } = {}) {
  const file = join(t.testdir(), 'sessions.db')
  const db = new Database(file)
  t.teardown(() => { if (db.open) db.close() })
  const clock = { now: 1_000_000 }
  const store = new SqliteSessionStore({ db, index, now: () => clock.now, ...options })
  const get = promisify(store.get.bind(store)) as (sid: string) => Promise<StoredSession | null | undefined>
  const set = promisify(store.set.bind(store)) as (sid: string, s: Session) => Promise<void>
  const destroy = promisify(store.destroy.bind(store)) as (sid: string) => Promise<void>
  const count = () => (db.prepare(`SELECT count(*) AS n FROM ${options.table ?? 'sessions'}`).get() as { n: number }).n
  return { db, file, store, clock, get, set, destroy, count }
}

t.test('set / get / destroy through the callback API', async (t) => {
  const { store, get, set, destroy, file } = open(t)
  t.equal(await get('nope'), null, 'unknown sid: null')
  await set('s1', { user: 'alice', n: 1 })
  t.same(await get('s1'), { user: 'alice', n: 1 })
  await set('s1', { user: 'alice', n: 2 })
  t.same(await get('s1'), { user: 'alice', n: 2 }, 'set overwrites')
  await destroy('s1')
  t.equal(await get('s1'), null, 'gone after destroy')
  await destroy('s1')
  t.pass('destroying an unknown sid is not an error')

  // callbacks: get calls back with (null, session); set/destroy with no error
  await new Promise<void>((resolve) => store.set('s2', { user: 'bob' }, (err?: unknown) => {
    t.equal(err, undefined, 'set calls back without an error')
    resolve()
  }))
  await new Promise<void>((resolve) => store.get('s2', (err, session) => {
    t.equal(err, null)
    t.same(session, { user: 'bob' })
    resolve()
  }))

  // persistent: a second connection to the same file sees the session
  const db2 = new Database(file)
  const store2 = new SqliteSessionStore({ db: db2, index })
  await new Promise<void>((resolve) => store2.get('s2', (_err, session) => {
    t.same(session, { user: 'bob' }, 'survives in the file')
    resolve()
  }))
  db2.close()
})

t.test('expired sessions are not returned; the row waits for takeExpired so its end can be reported', async (t) => {
  const { store, clock, get, set, count } = open(t)
  await set('old', { user: 'alice', sso: 'g1', expiresAt: clock.now + 1000 })
  t.same(await get('old'), { user: 'alice', sso: 'g1', expiresAt: clock.now + 1000 })
  clock.now += 999
  t.ok(await get('old'), 'one ms before expiry: live')
  clock.now += 1
  t.equal(await get('old'), null, 'at expiry: gone')
  t.equal(count(), 1, 'the row is kept (not returned) until taken')
  t.same(store.takeExpired(10), [{ user: 'alice', ssoSession: 'g1' }], 'so whoever sweeps still learns it ended')
  t.equal(count(), 0)
})

t.test('takeExpired deletes up to limit expired sessions, oldest first, and returns their index', async (t) => {
  const { store, clock, set, get, count } = open(t)
  await set('a', { user: 'alice', sso: 'g1', expiresAt: clock.now + 30 })
  await set('b', { user: 'bob', expiresAt: clock.now + 10 })
  await set('c', { expiresAt: clock.now + 20 })
  await set('live', { user: 'carol', sso: 'g3', expiresAt: clock.now + 1000 })
  t.same(store.takeExpired(10), [], 'nothing expired yet')
  clock.now += 30
  t.same(store.takeExpired(2), [{ user: 'bob', ssoSession: null }, { user: null, ssoSession: null }], 'the earliest first, at most limit')
  t.same(store.takeExpired(2), [{ user: 'alice', ssoSession: 'g1' }])
  t.same(store.takeExpired(2), [], 'each is taken once')
  t.equal(count(), 1)
  t.ok(await get('live'), 'live sessions stay')
})

t.test('destroyByUser and destroyBySsoSession end exactly the right sessions', async (t) => {
  const { store, get, set, count } = open(t)
  await set('a1', { user: 'alice', sso: 'g1' })
  await set('a2', { user: 'alice', sso: 'g2' })
  await set('a3', { user: 'alice' })
  await set('b1', { user: 'bob', sso: 'g3' })
  await set('al', { user: 'alice2', sso: 'g1x' })
  await set('anon', { n: 1 })
  await set('anon2', { sso: 'g1' }) // odd, but must only go with g1
  t.equal(store.destroyBySsoSession('g1'), 2, 'the two sessions born from g1')
  t.equal(await get('a1'), null)
  t.equal(await get('anon2'), null)
  t.ok(await get('a2'), 'another SSO session of the same user is kept')
  t.equal(store.destroyBySsoSession('g1'), 0, 'again: nothing left')
  t.equal(store.destroyBySsoSession('nope'), 0)
  t.equal(store.destroyByUser('alice'), 2, 'alice\'s remaining two sessions')
  t.equal(await get('a2'), null)
  t.equal(await get('a3'), null)
  t.ok(await get('b1'), 'bob kept')
  t.ok(await get('al'), 'alice2 kept (no prefix matching)')
  t.ok(await get('anon'), 'anonymous session kept')
  t.equal(store.destroyByUser('alice'), 0)
  t.equal(store.destroyByUser('ALICE'), 0, 'case sensitive')
  t.equal(store.destroyByUser('%'), 0, 'no LIKE wildcards')
  t.equal(count(), 3)
})

t.test('countByUser / listByUser count only live sessions', async (t) => {
  const { store, clock, set } = open(t)
  await set('a1', { user: 'alice', n: 1 })
  await set('a2', { user: 'alice', n: 2, expiresAt: clock.now + 10 })
  await set('b1', { user: 'bob', n: 3 })
  t.equal(store.countByUser('alice'), 2)
  t.same(store.listByUser('alice').map((s) => s.n).sort(), [1, 2])
  t.equal(store.countByUser('nobody'), 0)
  t.same(store.listByUser('nobody'), [])
  clock.now += 10
  t.equal(store.countByUser('alice'), 1, 'the expired one no longer counts')
  t.same(store.listByUser('alice'), [{ user: 'alice', n: 1 }])
})

t.test('prune deletes expired sessions only', async (t) => {
  const { store, clock, set, get, count } = open(t)
  await set('x1', { expiresAt: clock.now + 5 })
  await set('x2', { user: 'alice', expiresAt: clock.now + 5 })
  await set('keep', { user: 'alice', expiresAt: clock.now + 6 })
  t.equal(store.prune(), 0, 'nothing expired yet')
  clock.now += 5
  t.equal(store.prune(), 2)
  t.equal(count(), 1)
  t.ok(await get('keep'))
  t.equal(store.prune(), 0)
})

t.test('the index follows a session that changes user or SSO session', async (t) => {
  const { store, set, get } = open(t)
  await set('s', { n: 1 }) // anonymous first
  t.equal(store.countByUser('alice'), 0)
  await set('s', { user: 'alice', sso: 'g1' }) // signs in: the same sid (or a regenerated one) now belongs to alice
  t.equal(store.countByUser('alice'), 1)
  await set('s', { user: 'bob', sso: 'g2' })
  t.equal(store.countByUser('alice'), 0, 'no longer alice\'s')
  t.equal(store.destroyByUser('alice'), 0, 'logging alice out leaves bob\'s session')
  t.equal(store.destroyBySsoSession('g1'), 0)
  t.ok(await get('s'))
  await set('s', { n: 2 }) // signs out, stays as an anonymous session
  t.equal(store.destroyByUser('bob'), 0)
  t.equal(store.destroyBySsoSession('g2'), 0)
  t.same(await get('s'), { n: 2 })
})

t.test('table name: custom names work, unsafe names throw', async (t) => {
  const { store, set, get, db } = open(t, { table: 'svc_sessions' })
  await set('s', { user: 'alice' })
  t.same(await get('s'), { user: 'alice' })
  t.equal(store.destroyByUser('alice'), 1)
  const names = (db.prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'svc_sessions' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name)
  t.same(names, ['svc_sessions', 'svc_sessions_expires', 'svc_sessions_sso', 'svc_sessions_user'])
  for (const table of ['', 'Sessions', '1sessions', 'sessions; DROP TABLE x', 'a-b', 'a.b', '"x"', 'séance']) {
    t.throws(() => new SqliteSessionStore({ db, index, table }), TypeError, `refuses ${JSON.stringify(table)}`)
  }
  t.doesNotThrow(() => new SqliteSessionStore({ db, index, table: 'svc_sessions' }), 'opening an existing table again')
})

t.test('errors reach the callbacks', async (t) => {
  const { store, db } = open(t)
  const broken = new SqliteSessionStore({
    db,
    table: 'broken',
    index: () => { throw new Error('index failed') }
  })
  await t.rejects(promisify(broken.set.bind(broken))('s', {}), { message: 'index failed' }, 'index errors go to set\'s callback')
  const nanStore = new SqliteSessionStore({ db, table: 'nan', index: () => ({ user: null, ssoSession: null, expiresAt: Number.NaN }) })
  await t.rejects(promisify(nanStore.set.bind(nanStore))('s', {}), 'a NaN expiry is refused, not stored')
  db.close()
  await t.rejects(promisify(store.get.bind(store))('s'), { message: /not open/ }, 'get on a closed db')
  await t.rejects(promisify(store.set.bind(store))('s', {}), { message: /not open/ }, 'set on a closed db')
  await t.rejects(promisify(store.destroy.bind(store))('s'), { message: /not open/ }, 'destroy on a closed db')
  t.throws(() => store.destroyByUser('alice'), { message: /not open/ }, 'the synchronous methods throw')
})

t.test('corrupt stored data reaches get\'s callback', async (t) => {
  const { store, db } = open(t)
  db.prepare("INSERT INTO sessions (sid, data, expires_at) VALUES ('bad', '{not json', ?)").run(Number.MAX_SAFE_INTEGER)
  await t.rejects(promisify(store.get.bind(store))('bad'), SyntaxError)
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
    ['countByUser', 'SELECT count(*) AS n FROM sessions WHERE user_key = ? AND expires_at > ?', ['u1', 0]],
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
  const { store, get, set } = open(t)
  await set('a1', { user: 'alice', sso: 'g1', n: 1 })
  await set('a2', { user: 'alice', n: 2, account: { username: 'alice', team: 'x' } } as Session)
  await set('b1', { user: 'bob', n: 3 })
  t.equal(store.rekeyUser('alice', 'alicia'), 2)
  t.same(await get('a1'), { user: 'alicia', sso: 'g1', n: 1 }, 'the data follows ($.user by default)')
  t.equal(store.countByUser('alice'), 0)
  t.equal(store.countByUser('alicia'), 2)
  t.same(await get('b1'), { user: 'bob', n: 3 }, 'other users untouched')
  t.equal(store.rekeyUser('alicia', 'ally', ['$.user', '$.account.username']), 2)
  t.same(await get('a2'), { user: 'ally', n: 2, account: { username: 'ally', team: 'x' } }, 'nested fields too')
  t.equal(store.rekeyUser('alicia', 'x', ['$.user', '$.account.username']), 0, 'nobody left under the old name (cached statement)')
  t.equal(store.destroyByUser('ally'), 2, 'the index follows')
  t.equal(store.rekeyUser('nobody', 'x'), 0)
  t.throws(() => store.rekeyUser('a', 'b', []), TypeError)
  t.throws(() => store.rekeyUser('a', 'b', ['$.user\'); DROP TABLE sessions; --']), TypeError, 'paths are checked, never pasted')
  t.throws(() => store.rekeyUser('a', 'b', ['user']), TypeError)
})

t.test('touchBySsoSession restarts the idle clock of an SSO session, capped by the absolute limit', async (t) => {
  const { store, set, db } = open(t)
  const lifetime = { idleTimeout: 1000, absoluteTimeout: 5000 }
  await set('a', { user: 'alice', sso: 's1', createdAt: 1_000_000, seenAt: 1_000_000, expiresAt: 1_001_000 })
  await set('b', { user: 'alice', sso: 's2', createdAt: 1_000_000, seenAt: 1_000_000, expiresAt: 1_001_000 })
  await set('old', { user: 'bob', sso: 's3', expiresAt: 999_000 })
  const row = (sid: string) => db.prepare('SELECT data, expires_at FROM sessions WHERE sid = ?').get(sid) as { data: string, expires_at: number }
  t.equal(store.touchBySsoSession('s1', 1_000_500, lifetime), 1)
  t.equal(row('a').expires_at, 1_001_500, 'idle clock restarted')
  t.equal(JSON.parse(row('a').data).seenAt, 1_000_500, 'seenAt written into the session')
  t.equal(row('b').expires_at, 1_001_000, 'another SSO session untouched')
  t.equal(store.touchBySsoSession('s1', 1_004_800, lifetime), 0, 'an idle-expired session is not revived')
  await set('a', { user: 'alice', sso: 's1', createdAt: 1_000_000, seenAt: 1_004_500, expiresAt: 1_005_000 })
  t.equal(store.touchBySsoSession('s1', 1_004_600, lifetime), 1)
  t.equal(row('a').expires_at, 1_005_000, 'never past createdAt + absoluteTimeout')
  t.equal(store.touchBySsoSession('s3', 1_000_000, lifetime), 0, 'an expired session stays expired')
  t.equal(store.touchBySsoSession('nope', 1_000_000, lifetime), 0)
  await set('c', { user: 'carol', sso: 's4', expiresAt: 1_002_000 })
  t.equal(store.touchBySsoSession('s4', 1_000_100, lifetime), 1)
  t.equal(row('c').expires_at, 1_001_100, 'a session without createdAt gets the idle limit')
})

t.test('rekeyUser with `only` moves one user\'s sessions, not those of another user who held the name', async (t) => {
  const { store, set, get } = open(t)
  // Two users swapped names; the rename of usr_B (bob -> alice) was applied first.
  await set('a1', { user: 'alice', account: { user_id: 'usr_A', username: 'alice' } })
  await set('b1', { user: 'alice', account: { user_id: 'usr_B', username: 'alice' } })
  await set('legacy', { user: 'alice' })
  t.equal(store.rekeyUser('alice', 'carol', ['$.user', '$.account.username'], { path: '$.account.user_id', value: 'usr_A' }), 2,
    'usr_A\'s session and one that records no id')
  t.match(await get('a1'), { user: 'carol', account: { user_id: 'usr_A', username: 'carol' } })
  t.match(await get('b1'), { user: 'alice', account: { user_id: 'usr_B', username: 'alice' } }, 'usr_B keeps the name it now holds')
  t.match(await get('legacy'), { user: 'carol' })
  t.same(store.listByUser('alice').length, 1)
  t.throws(() => store.rekeyUser('a', 'b', ['$.user'], { path: "$.x') OR 1=1 --", value: 'v' }), TypeError, 'only plain JSON paths')
})
