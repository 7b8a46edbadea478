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

const serviceInput = (id: string, tokenHash: string) => ({
  id, name: id, baseUrl: `http://${id}.test`, eventUrl: `http://${id}.test/sso/event/`, tokenHash,
  signingSecret: 'whsec_' + Buffer.alloc(32, 1).toString('base64'), djangoToken: null, protocol: 'fastify-sso' as const,
  enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
})

t.test('services are cached in memory, and a change by another process on the same file is seen from the next event-loop turn', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const a = new SqliteGatewayStore({ filename: file })
  const b = new SqliteGatewayStore({ filename: file })
  t.teardown(async () => { await a.close(); await b.close() })
  t.equal(await a.services.byTokenHash('hash-1'), null, 'unknown secret')
  await a.services.create(serviceInput('svc_1', 'hash-1'))
  const first = await a.services.byTokenHash('hash-1')
  t.equal(first?.enabled, true, 'a miss is not cached: the new service is found')
  t.equal(await a.services.byTokenHash('hash-1'), first, 'the second lookup is the cached record')
  t.equal(await a.services.byId('svc_1'), first, 'by id too')
  t.throws(() => { (first as { enabled: boolean }).enabled = false }, 'the cached record cannot be changed in place')

  // Another process (here: another connection) disables the service: seen from the next
  // event-loop turn on (a commit in another process lands between two turns of this one).
  await b.services.update('svc_1', { enabled: false })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal((await a.services.byTokenHash('hash-1'))?.enabled, false, 'disabled by another connection: seen from the next turn')
  t.equal((await a.services.byId('svc_1'))?.enabled, false)

  // A change through this store: seen at once as well, and the old secret no longer matches.
  await a.services.update('svc_1', { enabled: true, tokenHash: 'hash-2' })
  t.equal(await a.services.byTokenHash('hash-1'), null, 'the replaced secret is refused')
  t.equal((await a.services.byTokenHash('hash-2'))?.enabled, true)
  await b.services.update('svc_1', { access: { users: ['usr_1'], groups: [] } })
  await new Promise((resolve) => setImmediate(resolve))
  t.same((await a.services.byTokenHash('hash-2'))?.access, { users: ['usr_1'], groups: [] }, 'an access rule set elsewhere applies at once')
})

t.test('WAL checkpoints run from a timer, not inside a commit', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const store = new SqliteGatewayStore({ filename: file, checkpointInterval: 20 })
  t.teardown(() => store.close())
  t.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 0, 'no checkpoint inside a commit')
  await store.services.create(serviceInput('svc', 'hash'))
  const { statSync } = await import('node:fs')
  const before = statSync(file).size
  for (let i = 0; i < 300; i++) {
    await store.tokens.create({ hash: `h${i}`.padEnd(43, 'x'), serviceId: 'svc', nextUrl: '/', prompt: null, expiresAt: Date.now() + 60_000, createdAt: Date.now() })
  }
  // The timer copies the WAL back into the database file (bounded wait).
  const deadline = Date.now() + 30_000
  while (statSync(file).size === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(statSync(file).size > before, 'the writes reached the database file by a background checkpoint')
})

t.test('getWithUser: the token, its user and the user\'s sorted groups in one read', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  await store.services.create(serviceInput('svc', 'hash'))
  await store.users.create({ id: 'usr_a', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: 'a@example.com', displayName: 'Alice', attributes: { team: 'x' } })
  for (const g of ['zeta', 'alpha']) {
    await store.groups.create(g)
    await store.groups.setMember(g, 'usr_a', true, () => [])
  }
  const now = Date.now()
  await store.tokens.create({ hash: 'tok', serviceId: 'svc', nextUrl: '/x', prompt: null, expiresAt: now + 60_000, createdAt: now })
  const pending = await store.tokens.getWithUser!('tok', now)
  t.match(pending, { token: { hash: 'tok', status: 'pending', userId: null }, user: null, groups: [] }, 'a pending token has no user')
  await store.tokens.authenticate('tok', { userId: 'usr_a', ssoSession: 'sso_1', sessionEndsAt: now + 1000, authAt: now, codeHash: null, expiresAt: now + 60_000 }, now)
  const read = await store.tokens.getWithUser!('tok', now)
  t.same(read?.token, await store.tokens.get('tok', now), 'the same token record as get')
  t.same(read?.user, await store.users.byId('usr_a'), 'the same user record as users.byId')
  t.same(read?.groups, ['alpha', 'zeta'], 'groups sorted, as groups.ofUser')
  t.equal(await store.tokens.getWithUser!('tok', now + 120_000), null, 'expired: nothing')
  t.equal(await store.tokens.getWithUser!('nope', now), null, 'unknown: nothing')
})
