import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { join } from 'node:path'
import t from 'tap'
import fastifySsoGateway, { SqliteGatewayStore } from '../src/index.js'
import { Browser, buildApp, PASSWORD, SESSION_SECRET, signIn } from './helpers.js'

t.test('a real SQLite file: WAL, migrations applied once and versioned, data kept across restarts', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const first = new SqliteGatewayStore({ filename: file })
  t.equal(first.schemaVersion, 5)
  t.equal(first.db.pragma('journal_mode', { simple: true }), 'wal')
  await first.createUser({ id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: { a: 1 } })
  await first.close()
  await first.close() // closing twice is harmless

  const second = new SqliteGatewayStore({ filename: file })
  t.teardown(() => second.close())
  t.equal(second.schemaVersion, 5, 'same version after reopening')
  const rows = second.db.prepare('SELECT version FROM schema_migrations').all()
  t.same(rows, [1, 2, 3, 4, 5].map((version) => ({ version })), 'each migration applied once')
  t.match(await second.getUserByUsername('alice'), { id: 'usr_1', attributes: { a: 1 } }, 'data kept')
  t.equal(second.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(second.db.pragma('foreign_keys', { simple: true }), 1)
})

t.test('a database at an older schema version is migrated forward, keeping its data', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const current = new SqliteGatewayStore({ filename: file })
  await current.createUser({ id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} })
  // Turn it back into a version-3 database (before groups and per-service access).
  current.db.exec(`DROP TABLE group_members; DROP TABLE groups; ALTER TABLE services DROP COLUMN access;
    ALTER TABLE services DROP COLUMN fields; ALTER TABLE request_tokens DROP COLUMN code_hash;
    DELETE FROM schema_migrations WHERE version >= 4`)
  await current.close()
  const reopened = new SqliteGatewayStore({ filename: file })
  t.teardown(() => reopened.close())
  t.equal(reopened.schemaVersion, 5)
  t.ok((reopened.db.prepare('PRAGMA table_info(services)').all() as Array<{ name: string }>).some((c) => c.name === 'access'))
  t.match(await reopened.getUserByUsername('alice'), { id: 'usr_1' }, 'data kept')
})

t.test('the gateway on a file: users, services and sessions survive a restart', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const { app, agent } = await buildApp({ database: file })
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true }).persist()
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  await app.close()

  const again = await buildApp({ database: file })
  t.teardown(() => again.app.close())
  t.match(await again.app.ssoGateway.getService('alpha'), { name: 'alpha' })
  t.match(await again.app.ssoGateway.getUser('alice'), { username: 'alice' })
  const revived = new Browser(again.app)
  for (const [k, v] of browser.cookies) revived.cookies.set(k, v)
  t.match((await revived.request('GET', '/welcome/')).body, /id="who">alice/, 'the browser session is persistent')
})

t.test('store edge cases', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  t.equal(await store.updateUser('usr_none', { isActive: false }), null)
  t.equal(await store.getUserById('usr_none'), null)
  t.equal(await store.getServiceById('svc_none'), null)
  t.equal(await store.getServiceByTokenHash('none'), null)
  t.equal(await store.getRequestToken('none', Date.now()), null)
  t.equal(await store.consumeRequestToken('none', 'svc', Date.now(), null), null)
  t.equal(await store.authenticateRequestToken('none', { userId: 'u', ssoSession: 'sso', sessionEndsAt: Date.now() + 5000, authAt: Date.now(), codeHash: null, expiresAt: Date.now() + 1000 }, Date.now()), false)
  t.equal(await store.pruneRequestTokens(Date.now()), 0)
  t.equal(await store.hasSignedIn('svc', 'u'), false)
  t.same(await store.deliveryStatus(), [])
  await store.enqueueEvents([])

  const user = { id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} }
  await store.createUser(user)
  await t.rejects(store.createUser({ ...user, username: 'other' }), { code: 'FST_SSO_GATEWAY_USER_EXISTS' }, 'a duplicate id')
  await t.rejects(store.createUser({ ...user, id: 'usr_2', username: null as never }), { code: 'SQLITE_CONSTRAINT_NOTNULL' }, 'other errors pass through')
  await t.rejects(store.updateUser('usr_1', { username: null as never }), { code: 'SQLITE_CONSTRAINT_NOTNULL' }, 'on update too')
  t.match(await store.getUserById('usr_1'), { username: 'alice' }, 'nothing changed')
  const service = { id: 'svc_1', name: 's', baseUrl: 'http://s', eventUrl: 'http://s/e', tokenHash: 'h', signingSecret: 'whsec_x', djangoToken: null, protocol: 'fastify-sso' as const, enabled: true, freshLogin: false, access: null, fields: null }
  await store.createService(service)
  await t.rejects(store.createService({ ...service, id: 'svc_2', name: null as never, tokenHash: 'h2' }), { code: 'SQLITE_CONSTRAINT_NOTNULL' })

  const now = Date.now()
  await store.createRequestToken({ hash: 't1', serviceId: 'svc_1', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
  t.equal(await store.authenticateRequestToken('t1', { userId: 'usr_1', ssoSession: 'sso_1', sessionEndsAt: now + 3_600_000, authAt: now, codeHash: null, expiresAt: now + 60_000 }, now), true)
  t.equal(await store.authenticateRequestToken('t1', { userId: 'usr_1', ssoSession: 'sso_1', sessionEndsAt: now + 3_600_000, authAt: now, codeHash: null, expiresAt: now + 60_000 }, now), false, 'only a pending token')
  t.equal(await store.hasSignedIn('svc_1', 'usr_1'), true)
  t.equal(await store.consumeRequestToken('t1', 'svc_other', now, null), null, 'only by its service')
  t.match(await store.consumeRequestToken('t1', 'svc_1', now, null), { status: 'used', userId: 'usr_1', ssoSession: 'sso_1' })
  t.match(await store.getRequestToken('t1', now), { status: 'used' })
})

t.test('the plugin opens and closes its own file', async (t) => {
  const file = join(t.testdir({}), 'own.sqlite')
  const app = Fastify()
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: file, busyTimeout: 0 })
  await app.ready()
  await app.close()
  const db = new Database(file)
  t.teardown(() => db.close())
  t.ok(db.prepare("SELECT name FROM sqlite_master WHERE name = 'gateway_sessions'").get(), 'the session table lives in the same file')
})

t.test('without options the store opens sso-gateway.sqlite in the working directory', async (t) => {
  const dir = t.testdir({})
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => process.chdir(cwd))
  const store = new SqliteGatewayStore()
  t.equal(store.db.name, 'sso-gateway.sqlite')
  await store.close()
})

t.test('delivered events are pruned after their retention; pending and dead ones stay', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  await store.enqueueEvents([
    { id: 'evt_done', serviceId: 's', userKey: 'u1', payload: '{}' },
    { id: 'evt_pending', serviceId: 's', userKey: 'u2', payload: '{}' },
    { id: 'evt_dead', serviceId: 's', userKey: 'u3', payload: '{}' }
  ])
  await store.completeEvent('evt_done')
  await store.failEvent('evt_dead', 'HTTP 410', null)
  t.equal(await store.pruneDeliveredEvents(Date.now() - 60_000), 0, 'not yet: still within the retention')
  t.equal(await store.pruneDeliveredEvents(Date.now() + 1), 1, 'the delivered one goes')
  t.same((await store.listEvents('pending', 10)).map((e) => e.id), ['evt_pending'])
  t.same((await store.listEvents('dead', 10)).map((e) => e.id), ['evt_dead'])
  t.same(await store.listEvents('delivered', 10), [])
})
