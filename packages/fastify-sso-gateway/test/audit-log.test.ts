// The audit log the console reads: what sign-ins and changes write, who it names, and that a
// failing audit write never fails the change it records.
import t from 'tap'
import { MemoryGatewayStore } from '../src/index.js'
import { Browser, buildApp, logLines, PASSWORD, seed, signIn, signInAs, sleep, storeOf } from './helpers.js'

t.test('sign-ins, failures, refusals and sign-outs are recorded; unknown names are not', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  const failed = await signInAs(app, new Browser(app), secret, 'alice', 'not the right password')
  t.equal(failed.res.statusCode, 401)
  await signInAs(app, new Browser(app), secret, 'nobody-at-all', 'not the right password')
  await app.ssoGateway.updateService('alpha', { access: { users: [] } })
  const refused = await signInAs(app, new Browser(app), secret, 'alice')
  t.equal(refused.res.statusCode, 403)
  const page = await browser.request('GET', '/welcome/')
  await browser.request('POST', '/logout/', { _csrf: Browser.csrf(page.body), scope: 'session' })

  const kinds = (await app.ssoGateway.auditLog()).map((r) => r.kind)
  t.same(kinds.filter((k) => ['login', 'service_sign_in', 'login_failed', 'access_denied', 'logout'].includes(k)),
    ['logout', 'access_denied', 'login', 'login_failed', 'service_sign_in', 'login'], 'newest first')
  t.match(await app.ssoGateway.auditLog({ kind: 'service_sign_in' }), [{ user: 'alice', service: 'alpha', actor: null }])
  t.match(await app.ssoGateway.auditLog({ kind: 'login_failed' }), [{ user: 'alice', detail: { ip: String } }])
  t.equal((await app.ssoGateway.auditLog({ user: 'nobody-at-all' })).length, 0, 'a name that is no account is not kept')
  t.equal((await app.ssoGateway.auditLog({ limit: 1 })).length, 1)
  t.equal((await app.ssoGateway.auditLog({ limit: 0 })).length, 1, 'at least one')
  t.ok((await app.ssoGateway.auditLog({ limit: 5000 })).length <= 1000, 'at most 1000')
})

t.test('an audit write that fails is logged; the change it records stands', async (t) => {
  const store = new MemoryGatewayStore()
  store.audit.append = async () => { throw new Error('disk full') }
  const { lines, server } = logLines()
  const { app } = await buildApp({ store }, server)
  t.teardown(() => app.close())
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  t.ok(await app.ssoGateway.getUser('alice'), 'the user exists')
  t.match(lines.find((l) => l.msg === 'sso audit record could not be written'), { level: 50, kind: 'user_created', err: { message: 'disk full' } })
})

t.test('housekeeping deletes audit records older than a year', async (t) => {
  const { app } = await buildApp({ housekeepingInterval: 100 })
  t.teardown(() => app.close())
  const store = storeOf(app)
  const year = 365 * 86_400_000
  await store.audit.append([
    { at: Date.now() - year - 60_000, kind: 'login', actor: null, user: 'old', service: null, detail: {} },
    { at: Date.now() - year + 3_600_000, kind: 'login', actor: null, user: 'recent', service: null, detail: {} }
  ])
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && (await store.audit.list({ user: 'old', limit: 1 })).length > 0) await sleep(50)
  t.same(await store.audit.list({ user: 'old', limit: 1 }), [], 'the year-old record is gone')
  t.equal((await store.audit.list({ user: 'recent', limit: 1 })).length, 1, 'a younger one stays')
})
