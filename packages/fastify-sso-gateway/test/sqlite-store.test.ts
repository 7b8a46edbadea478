import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { join } from 'node:path'
import t from 'tap'
import fastifySsoGateway, { SqliteGatewayStore } from '../src/index.js'
import { Browser, buildApp, PASSWORD, SESSION_SECRET, signIn } from './helpers.js'

t.test('a real SQLite file: WAL, migrations applied once and versioned, data kept across restarts', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const first = new SqliteGatewayStore({ filename: file })
  t.equal(first.schemaVersion, 8)
  t.equal(first.db.pragma('journal_mode', { simple: true }), 'wal')
  await first.users.create({ id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: { a: 1 } })
  await first.close()
  await first.close() // closing twice is harmless

  const second = new SqliteGatewayStore({ filename: file })
  t.teardown(() => second.close())
  t.equal(second.schemaVersion, 8, 'same version after reopening')
  const rows = second.db.prepare('SELECT version FROM schema_migrations').all()
  t.same(rows, [1, 2, 3, 4, 5, 6, 7, 8].map((version) => ({ version })), 'each migration applied once')
  t.match(await second.users.byUsername('alice'), { id: 'usr_1', attributes: { a: 1 } }, 'data kept')
  t.equal(second.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(second.db.pragma('foreign_keys', { simple: true }), 1)
})

t.test('a database at an older schema version is migrated forward, keeping its data', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const current = new SqliteGatewayStore({ filename: file })
  await current.users.create({ id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} })
  // Turn it back into a version-3 database (before groups and per-service access).
  current.db.exec(`DROP TABLE group_members; DROP TABLE groups; ALTER TABLE services DROP COLUMN access;
    ALTER TABLE services DROP COLUMN fields; ALTER TABLE request_tokens DROP COLUMN code_hash;
    ALTER TABLE services DROP COLUMN display_name; ALTER TABLE services DROP COLUMN logo_url;
    DROP TABLE ended_sessions; DROP TABLE ended_sso_sessions; DROP INDEX request_tokens_sso; DROP INDEX request_tokens_user;
    DROP INDEX services_previous_token; ALTER TABLE services DROP COLUMN previous; ALTER TABLE services DROP COLUMN previous_token_hash;
    DROP TABLE audit_log; DELETE FROM schema_migrations WHERE version >= 4`)
  await current.close()
  const reopened = new SqliteGatewayStore({ filename: file })
  t.teardown(() => reopened.close())
  t.equal(reopened.schemaVersion, 8)
  t.ok((reopened.db.prepare('PRAGMA table_info(services)').all() as Array<{ name: string }>).some((c) => c.name === 'access'))
  t.match(await reopened.users.byUsername('alice'), { id: 'usr_1' }, 'data kept')
})

t.test('a version-6 database gains service display names and logos; its services keep working', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const current = new SqliteGatewayStore({ filename: file })
  await current.services.create({
    id: 'svc_1', name: 'alpha', baseUrl: 'http://alpha.test', eventUrl: 'http://alpha.test/sso/event/', tokenHash: 'h', signingSecret: 'whsec_x',
    djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: 'Alpha', logoUrl: '/a.png'
  })
  current.db.exec(`ALTER TABLE services DROP COLUMN display_name; ALTER TABLE services DROP COLUMN logo_url;
    DROP INDEX services_previous_token; ALTER TABLE services DROP COLUMN previous; ALTER TABLE services DROP COLUMN previous_token_hash;
    DROP TABLE audit_log; DELETE FROM schema_migrations WHERE version >= 7`)
  await current.close()
  const reopened = new SqliteGatewayStore({ filename: file })
  t.teardown(() => reopened.close())
  t.equal(reopened.schemaVersion, 8)
  t.match(await reopened.services.byName('alpha'), { id: 'svc_1', displayName: null, logoUrl: null }, 'an old service has neither')
  t.match(await reopened.services.update('svc_1', { displayName: 'Alpha app' }), { displayName: 'Alpha app' }, 'and can be given one')
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


t.test('SQLite errors other than a taken name pass through; nothing is written', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  const user = { id: 'usr_1', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} }
  await store.users.create(user)
  await t.rejects(store.users.create({ ...user, id: 'usr_2', username: null as never }), { code: 'SQLITE_CONSTRAINT_NOTNULL' })
  await t.rejects(store.users.update('usr_1', { username: null as never }), { code: 'SQLITE_CONSTRAINT_NOTNULL' }, 'on update too')
  t.match(await store.users.byId('usr_1'), { username: 'alice' }, 'nothing changed')
  const service = { id: 'svc_1', name: 's', baseUrl: 'http://s', eventUrl: 'http://s/e', tokenHash: 'h', signingSecret: 'whsec_x', djangoToken: null, protocol: 'fastify-sso' as const, enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null }
  await t.rejects(store.services.create({ ...service, name: null as never }), { code: 'SQLITE_CONSTRAINT_NOTNULL' })
  t.same(await store.services.list(), [])
})

t.test('a service row from before the django-sso dialects reads as django-sso-1', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  store.db.prepare(`INSERT INTO services (id, name, base_url, event_url, token_hash, signing_secret, django_token, protocol, enabled, created_at)
    VALUES ('svc_old', 'old', 'http://old', 'http://old/sso/event/', 'h', 'whsec_x', 'secret', 'django-sso', 1, 0)`).run()
  t.match(await store.services.byId('svc_old'), { protocol: 'django-sso-1' })
})

t.test('a write waits for another writer asynchronously, then goes through', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const store = new SqliteGatewayStore({ filename: file, busyTimeout: 60_000 })
  t.teardown(() => store.close())
  const other = new Database(file, { timeout: 0 })
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  let done = false
  const write = store.groups.create('staff').then(() => { done = true })
  // The event loop keeps turning while the write waits: timers and I/O callbacks run.
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(done, false, 'still waiting for the lock')
  other.exec('ROLLBACK')
  await write
  t.same(await store.groups.list(), ['staff'], 'written once the lock is gone')
})
