// The gateway's database locked by another writer for longer than the busy timeout: a clear
// 503, no half-done sign-in. A read-only or full database fails closed the same way.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir } from '../helpers/temp.js'
import { request } from 'undici'
import { SqliteGatewayStore } from '../../packages/fastify-sso-gateway/src/index.js'
import { Browser, buildApp, call, PASSWORD as UNIT_PASSWORD } from '../../packages/fastify-sso-gateway/test/helpers.js'
import { startFleet } from '../../scripts/fleet.mjs'
import { FAST_GATEWAY_ENV, obtain, openSqlite, outbox, startStandIn } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-4'
const BUSY = 300

t.test('another writer holds the database past the busy timeout: 503, nothing half-done', async (t) => {
  const standIn = await startStandIn()
  t.teardown(standIn.stop)
  const svc = standIn.seed('svc')
  const dataDir = tempDir('sso-faults-locked-')
  const fleet = await startFleet({
    dataDir, password: PASSWORD, apps: ['gateway'], extraServices: [svc], appEnv: { gateway: { ...FAST_GATEWAY_ENV, BUSY_TIMEOUT: String(BUSY) } }
  })
  t.teardown(fleet.stop)
  const gw = fleet.internal.gateway
  const file = join(dataDir, 'gateway.sqlite')

  const token = await obtain(gw, svc.secret)
  const browser = new HttpBrowser()
  const form = await browser.send('GET', `${gw}/login/?sso=${encodeURIComponent(token)}`)
  t.equal(form.status, 200)

  const locker = openSqlite(file)
  locker.exec('BEGIN IMMEDIATE')
  locker.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (-1, 0)").run()
  t.teardown(() => { try { locker.exec('ROLLBACK') } catch {} locker.close() })

  const started = Date.now()
  const page = await browser.send('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
  t.equal(page.status, 503, 'sign-in answered 503')
  t.ok(Date.now() - started < BUSY + 3000, `after ${Date.now() - started} ms`)
  t.match(page.body, /Temporarily unavailable/)
  t.match(page.body, /temporarily unavailable\. Try again in a moment/)
  t.equal(page.headers['retry-after'], '5')

  const obtained = await request(`${gw}/sso/obtain/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: svc.secret, next_url: '/' }).toString()
  })
  t.equal(obtained.statusCode, 503, 'the protocol too')
  t.match(await obtained.body.json(), { code: 'FST_SSO_GATEWAY_UNAVAILABLE' })

  locker.exec('ROLLBACK')
  t.ok(fleet.procs.gateway!.exitCode === null, 'the gateway is still running')

  // Nothing half-done: not signed in at the gateway, the request still pending, no event queued.
  const welcome = await browser.send('GET', `${gw}/welcome/`)
  t.match(welcome.body, /Nobody is signed in/)
  const again = await browser.send('GET', form.url)
  t.equal(again.status, 200)
  t.match(again.body, /type="password"/, 'the same sign-in link shows the form again: the request is still pending')
  t.same(outbox(file, 'svc'), [], 'no update_account queued')

  // And the sign-in works once the lock is gone.
  const done = await browser.send('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(again.body) })
  t.equal(done.status, 303)
  t.ok(String(done.headers.location).startsWith(`${svc.baseUrl}/sso/accept/?code=`), 'back to the service with the browser code')
})

/** Every write refused, or only some (a nearly full file): either way no request is authenticated. */
async function failClosed (t: Test, breakIt: (store: SqliteGatewayStore) => void, everyWriteFails: boolean): Promise<void> {
  const store = new SqliteGatewayStore({ filename: join(t.testdir({}), 'gateway.sqlite'), busyTimeout: 100 })
  const { app, agent } = await buildApp({ store })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await app.ssoGateway.createUser({ username: 'alice', password: UNIT_PASSWORD })
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(200, {}).persist()
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)

  breakIt(store)
  const page = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: UNIT_PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(page.statusCode, 503)
  t.match(page.body, /Temporarily unavailable/)
  const obtained = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(obtained.statusCode, 503)
  t.match(obtained.json(), { code: 'FST_SSO_GATEWAY_UNAVAILABLE' })
  const got = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(got.statusCode, 409, 'the request is still pending: nobody was signed in')
  t.same(await app.ssoGateway.events.status(), [], 'no event queued')
  if (everyWriteFails) t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/, 'no gateway session either')
}

t.test('a read-only database fails closed', async (t) => {
  // As root a file mode does not stop writes; query_only makes every write fail with SQLITE_READONLY.
  await failClosed(t, (store) => { store.db.pragma('query_only = ON') }, true)
})

t.test('a full database fails closed', async (t) => {
  // A real SQLITE_FULL from SQLite: the file may not grow (max_page_count), and each write of
  // the sign-in first needs a new page (as it would when every page is full).
  await failClosed(t, (store) => {
    store.db.exec('CREATE TABLE filler (x BLOB)')
    store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true }))}`)
    const grow = store.db.prepare('INSERT INTO filler VALUES (randomblob(8000))')
    for (const method of ['authenticate', 'create'] as const) {
      const real = store.tokens[method] as (...args: unknown[]) => Promise<unknown>
      ;(store.tokens as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
        store.db.transaction(() => { grow.run(); return real(...args) }).immediate()
      }
    }
  }, false)
})
