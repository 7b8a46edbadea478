// PostgreSQL-specific behaviour of PostgresGatewayStore, beyond the shared contract: migrations
// (idempotent, safe when processes start together), what two processes (two pools) sharing one
// database must never do (both consume a token, both hold one event, break a user's order),
// lease takeover, the shared first-run setting, and failing closed when the database is gone.
import pg from 'pg'
import t, { type Test } from 'tap'
import { migratePostgres, PostgresGatewayStore, type GatewayStore, type NewOutboxEvent } from '../src/index.js'
import { isDatabaseUnavailable } from '../src/store/postgres.js'
import { startTcpProxy } from '../../../test/helpers/tcp-proxy.js'
import { buildApp, call, PASSWORD, seed, Browser } from './helpers.js'
import { freshDatabase } from './pg-helpers.js'

async function twoStores (t: Test): Promise<[PostgresGatewayStore, PostgresGatewayStore, string]> {
  const url = await freshDatabase(t)
  const a = new PostgresGatewayStore({ connectionString: url, max: 4 })
  const b = new PostgresGatewayStore({ connectionString: url, max: 4 })
  t.teardown(async () => { await a.close(); await b.close() })
  await Promise.all([a.ready(), b.ready()])
  return [a, b, url]
}

async function seedStore (store: GatewayStore): Promise<void> {
  await store.users.create({ id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} })
  await store.services.create({
    id: 'svc_a', name: 'a', baseUrl: 'http://a.test', eventUrl: 'http://a.test/sso/event/', tokenHash: 'h', signingSecret: 's',
    djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
  })
}

t.test('migrations: versioned, idempotent, one at a time when processes start together', async (t) => {
  const url = await freshDatabase(t)
  const results = await Promise.all([migratePostgres(url), migratePostgres(url), migratePostgres(url)])
  t.same(results.map((r) => r.to), [2, 2, 2], 'every caller sees the newest version')
  t.equal(results.filter((r) => r.from === 0).length, 1, 'exactly one of them applied the migrations')
  t.same(await migratePostgres(url), { from: 2, to: 2 }, 'running again changes nothing')
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  t.teardown(async () => { await pool.end() })
  t.same(await migratePostgres(pool), { from: 2, to: 2 }, 'a pool works too (and is left open)')
  t.same((await pool.query('SELECT version FROM schema_migrations ORDER BY version')).rows, [{ version: 1 }, { version: 2 }])
  const store = new PostgresGatewayStore({ pool, migrate: false })
  t.equal(await store.schemaVersion(), 2)
  await store.close()
  await store.close()
  t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'a pool the store was given stays open after close()')
})

t.test('a migration that fails leaves nothing behind and is retried at the next start', async (t) => {
  const url = await freshDatabase(t)
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(async () => { await admin.end() })
  // Something in the way of migration 1: it fails half-way (after creating its first table).
  await admin.query('CREATE TABLE outbox (x int)')
  const store = new PostgresGatewayStore({ connectionString: url })
  t.teardown(async () => { await store.close() })
  await t.rejects(store.users.byId('x'), { message: /relation "outbox" already exists/ })
  t.same((await admin.query("SELECT to_regclass('users') AS t, to_regclass('schema_migrations') AS m")).rows[0], { t: null, m: 'schema_migrations' },
    'the migration was rolled back whole')
  await admin.query('DROP TABLE outbox')
  t.equal(await store.users.byId('x'), null, 'the next operation migrates and runs')
  t.equal(await store.schemaVersion(), 2)
})

t.test('two processes: a request token is consumed by exactly one', async (t) => {
  const [a, b] = await twoStores(t)
  await seedStore(a)
  const now = Date.now()
  for (let round = 0; round < 5; round++) {
    const hash = `tok_${round}`
    await a.tokens.create({ hash, serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
    t.equal(await b.tokens.authenticate(hash, { userId: 'usr_1', ssoSession: `sso_${round}`, sessionEndsAt: now + 60_000, authAt: now, codeHash: null, expiresAt: now + 60_000 }, now), true)
    const tries = await Promise.all(Array.from({ length: 8 }, async (_, i) => await (i % 2 === 0 ? a : b).tokens.consume(hash, 'svc_a', now, null)))
    t.equal(tries.filter((r) => r !== null).length, 1, `round ${round}: one winner of 8 calls on two pools`)
  }
})

t.test('two processes claiming: never the same event twice, never two of one user at once, in order', async (t) => {
  const [a, b] = await twoStores(t)
  await seedStore(a)
  const events: NewOutboxEvent[] = []
  for (let n = 0; n < 15; n++) for (let u = 0; u < 8; u++) events.push({ id: `u${u}:${n}`, serviceId: 'svc_a', userKey: `u${u}`, payload: '{}' })
  await a.outbox.enqueue(events)
  const claimedBy = new Map<string, string>()
  const delivered: string[] = []
  let overlap = false
  let rounds = 0
  while (delivered.length < events.length && rounds++ < 200) {
    const now = Date.now()
    const [ca, cb] = await Promise.all([a.outbox.claim(now, 60_000, 5), b.outbox.claim(now, 60_000, 5)])
    const users = [...ca, ...cb].map((e) => e.userKey)
    if (new Set(users).size !== users.length) overlap = true
    for (const [who, list] of [['a', ca], ['b', cb]] as const) {
      for (const e of list) {
        if (claimedBy.has(e.id)) overlap = true
        claimedBy.set(e.id, who)
      }
    }
    // Each process completes what it holds, both at once.
    await Promise.all([...ca.map(async (e) => { await a.outbox.complete(e.id) }), ...cb.map(async (e) => { await b.outbox.complete(e.id) })])
    delivered.push(...ca.map((e) => e.id), ...cb.map((e) => e.id))
  }
  t.equal(delivered.length, events.length, 'every event claimed')
  t.notOk(overlap, 'no event held by both, no user with two events out at once')
  const inOrder = [...Array(8).keys()].every((u) => {
    const ns = delivered.filter((id) => id.startsWith(`u${u}:`)).map((id) => Number(id.split(':')[1]))
    return ns.every((n, i) => n === i)
  })
  t.ok(inOrder, 'each user\'s events in the order queued')
  t.ok(new Set(claimedBy.values()).size === 2, 'both processes took part')
})

t.test('a crashed process\'s leases are taken over when they expire, and only then', async (t) => {
  const [a, b, url] = await twoStores(t)
  await seedStore(a)
  await a.outbox.enqueue([{ id: 'e1', serviceId: 'svc_a', userKey: 'u1', payload: '{}' }, { id: 'e2', serviceId: 'svc_a', userKey: 'u1', payload: '{}' }])
  const crashing = new PostgresGatewayStore({ connectionString: url, max: 1 })
  const now = Date.now()
  t.same((await crashing.outbox.claim(now, 5000, 10)).map((e) => e.id), ['e1'])
  await crashing.pool.end() // the process is gone: its lease stays in the database
  t.same(await b.outbox.claim(now + 4999, 5000, 10), [], 'not while the lease runs (e2 waits behind e1)')
  t.same((await b.outbox.claim(now + 5000, 5000, 10)).map((e) => e.id), ['e1'], 'taken over at expiry')
  await b.outbox.complete('e1')
  t.same((await b.outbox.claim(now + 5000, 5000, 10)).map((e) => e.id), ['e2'], 'then the next in order')
})

t.test('the first-run setting: processes starting together all get the first writer\'s value', async (t) => {
  const [a, b] = await twoStores(t)
  const values = await Promise.all([a, b, a, b].map(async (s, i) => await s.setting('session_secret', () => `value-${i}`)))
  t.equal(new Set(values).size, 1, 'one value')
  t.equal(await b.setting('session_secret', () => 'later'), values[0], 'kept')
})

t.test('sessions shared by two processes: an end in one is never undone by a late save in the other', async (t) => {
  const [a, b] = await twoStores(t)
  await seedStore(a)
  const now = Date.now()
  const session = { cookie: { originalMaxAge: null }, user: 'usr_1', sso: 'sso_1', createdAt: now } as never
  await a.sessions.set('s1', session, { user: 'usr_1', ssoSession: 'sso_1', expiresAt: now + 60_000 })
  t.match(await b.sessions.get('s1', now), { user: 'usr_1' }, 'written by one, read by the other')
  // Many late saves racing the end of the SSO session: none survives it.
  await Promise.all([
    b.sessions.destroyBySsoSession('sso_1', () => []),
    ...Array.from({ length: 6 }, async (_, i) => { await a.sessions.set(i === 0 ? 's1' : `s1_${i}`, session, { user: 'usr_1', ssoSession: 'sso_1', expiresAt: now + 60_000 }) })
  ])
  t.same(await a.sessions.listByUser('usr_1', now), [], 'no session of the ended SSO session is left')
})

t.test('the database unreachable: operations fail with UNAVAILABLE, and work again when it is back', async (t) => {
  const url = await freshDatabase(t)
  await migratePostgres(url)
  const proxy = await startTcpProxy(5432)
  t.teardown(proxy.close)
  const store = new PostgresGatewayStore({ connectionString: url.replace(':5432/', `:${proxy.port}/`), connectionTimeoutMillis: 1000, max: 2 })
  t.teardown(async () => { await store.close() })
  await seedStore(store)
  await proxy.cut()
  await t.rejects(store.users.byId('usr_1'), { code: 'FST_SSO_GATEWAY_UNAVAILABLE', statusCode: 503 }, 'a read')
  await t.rejects(store.sessions.destroyByUser('usr_1', () => []), { code: 'FST_SSO_GATEWAY_UNAVAILABLE' }, 'a transaction')
  proxy.restore()
  t.match(await store.users.byId('usr_1'), { username: 'alice' }, 'back without a new store')

  // A connection lost in the middle of a transaction: rolled back by the server, dropped by the pool.
  let cutting: Promise<void> | undefined
  const held = store.sessions.destroyByUser('usr_1', () => {
    cutting = proxy.cut()
    return [{ id: 'evt_x', serviceId: 'svc_a', userKey: 'usr_1', payload: '{}' }]
  })
  await t.rejects(held, { code: 'FST_SSO_GATEWAY_UNAVAILABLE' })
  await cutting
  proxy.restore()
  t.same(await store.outbox.list('pending', 10), [], 'nothing of it was written')

  // A statement that cannot finish in time: 503 as well, and the connection is usable after.
  const slow = new PostgresGatewayStore({ connectionString: url, statementTimeout: 50, max: 1 })
  t.teardown(async () => { await slow.close() })
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(async () => { await admin.end() })
  await admin.query('BEGIN')
  await admin.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')
  await t.rejects(slow.users.byId('usr_1'), { code: 'FST_SSO_GATEWAY_UNAVAILABLE' }, 'statement timeout')
  await admin.query('ROLLBACK')
  t.match(await slow.users.byId('usr_1'), { username: 'alice' })
})

t.test('a store that never reached its database: ready() fails, and is tried again on the next call', async (t) => {
  const proxy = await startTcpProxy(5432)
  t.teardown(proxy.close)
  const url = await freshDatabase(t)
  await proxy.cut()
  const store = new PostgresGatewayStore({ connectionString: url.replace(':5432/', `:${proxy.port}/`), connectionTimeoutMillis: 1000 })
  t.teardown(async () => { await store.close() })
  await t.rejects(store.ready(), { code: 'FST_SSO_GATEWAY_UNAVAILABLE' })
  proxy.restore()
  await store.ready()
  t.equal(await store.schemaVersion(), 2)
})

t.test('which errors mean "unavailable"', async (t) => {
  for (const code of ['08006', '57P01', '53300', '57014', '40P01', 'ECONNREFUSED']) t.ok(isDatabaseUnavailable(Object.assign(new Error('x'), { code })), code)
  for (const code of ['23505', '42P01', 'ERR_X']) t.notOk(isDatabaseUnavailable(Object.assign(new Error('x'), { code })), code)
  t.ok(isDatabaseUnavailable(new Error('Connection terminated unexpectedly')))
  t.notOk(isDatabaseUnavailable(new Error('boom')))
  t.notOk(isDatabaseUnavailable({ code: 'ERR_X' }), 'a thrown value that is not an Error (no message)')
})

t.test('a PostgreSQL database that does not exist is refused at register, naming it', async (t) => {
  const missing = `postgres://postgres@127.0.0.1:5432/sso_t_missing_${Date.now().toString(16)}`
  await t.rejects(buildApp({ database: missing }), {
    code: 'FST_SSO_GATEWAY_INVALID_OPTION',
    message: /database: cannot open the PostgreSQL database .*sso_t_missing_.*does not exist/
  })
})

t.test('the gateway on a postgres:// URL: the database option opens PostgreSQL', async (t) => {
  const url = await freshDatabase(t)
  const { app, agent } = await buildApp({ database: url })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const done = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(done.statusCode, 303, 'a sign-in through PostgreSQL')
  const check = new PostgresGatewayStore({ connectionString: url, max: 1 })
  t.teardown(async () => { await check.close() })
  t.match(await check.users.byUsername('alice'), { email: 'alice@example.test' }, 'the users are in PostgreSQL')
})

t.test('the gateway: a PostgreSQL URL that is wrong or unreachable stops the start, never showing the password', async (t) => {
  await t.rejects(buildApp({ database: 'postgres://user:hunter2@/nodb' }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /database.*postgres:\/\/user:\*\*\*@/ })
  await t.rejects(buildApp({ database: 'postgresql://user:hunter2@127.0.0.1:1/x', busyTimeout: 500 }),
    { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /cannot open the PostgreSQL database postgresql:\/\/user:\*\*\*@127\.0\.0\.1:1\/x/ })
  try {
    await buildApp({ database: 'postgresql://user:hunter2@127.0.0.1:1/x', busyTimeout: 500 })
  } catch (err) {
    t.notMatch((err as Error).message, /hunter2/, 'no password in the message')
  }
})

t.test('the gateway with the database gone: 503 page and JSON, then back', async (t) => {
  const url = await freshDatabase(t)
  const proxy = await startTcpProxy(5432)
  t.teardown(proxy.close)
  const { app, agent } = await buildApp({ database: url.replace(':5432/', `:${proxy.port}/`), busyTimeout: 1000 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await proxy.cut()
  const res = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(res.statusCode, 503)
  t.same(res.json(), { error: 'The sign-in service is temporarily unavailable, please retry', code: 'FST_SSO_GATEWAY_UNAVAILABLE' })
  const page = await new Browser(app).request('GET', '/login/?sso=abc')
  t.equal(page.statusCode, 503)
  t.match(page.body, /Temporarily unavailable/)
  proxy.restore()
  t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 200, 'back without a restart')
})

t.test('a constraint other than a taken name is passed on as it is', async (t) => {
  const [a] = await twoStores(t)
  await seedStore(a)
  const nullName = null as unknown as string
  await t.rejects(a.users.create({ id: 'usr_2', username: nullName, passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} }),
    { code: '23502' })
  await t.rejects(a.users.update('usr_1', { username: nullName }), { code: '23502' })
  await t.rejects(a.services.create({
    id: 'svc_b', name: nullName, baseUrl: 'http://b.test', eventUrl: 'http://b.test/sso/event/', tokenHash: 'h2', signingSecret: 's',
    djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
  }), { code: '23502' })
  t.match(await a.users.byId('usr_1'), { username: 'alice' })
})

t.test('options are checked when the store is made, naming the option (never the URL)', async (t) => {
  t.throws(() => new PostgresGatewayStore(undefined as never), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /PostgresGatewayStore options/ })
  t.throws(() => new PostgresGatewayStore({}), { message: /PostgresGatewayStore connectionString: must be a postgres:\/\/ URL \(or give pool\) \(got none\)/ })
  t.throws(() => new PostgresGatewayStore({ connectionString: 'mysql://u:hunter2@h/x' }), { message: /got a string that is not one/ })
  t.throws(() => new PostgresGatewayStore({ connectionString: 42 as never }), { message: /got number/ })
  t.throws(() => new PostgresGatewayStore({ connectionString: 'postgres://h/x', max: 0 }), { message: /PostgresGatewayStore max: must be a whole number of at least 1 \(got 0\)/ })
  t.throws(() => new PostgresGatewayStore({ connectionString: 'postgres://h/x', statementTimeout: 1.5 }), { message: /statementTimeout/ })
})

t.test('an app\'s own pool (default type parsers) works the same', async (t) => {
  const url = await freshDatabase(t)
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  t.teardown(async () => { await pool.end() })
  const store = new PostgresGatewayStore({ pool })
  await seedStore(store)
  t.type((await store.users.byId('usr_1'))?.createdAt, 'number', 'timestamps are numbers')
  await store.close()
  t.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'left open')
})
