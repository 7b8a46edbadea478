import Database from 'better-sqlite3'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { SqliteSessionStore } from '../src/session-store.js'
import { Browser, buildApp, csrfOf, signIn } from './helpers.js'

// Risk: a service whose database is full or read-only answered its pages, the sign-out page
// included, with Fastify's raw JSON 500 ({"code":"SQLITE_FULL",...}). The error is real SQLite's
// (a database whose page count may not grow); only which store call meets it is chosen here.

function sqliteFull (): Error {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE x (v TEXT)')
  db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`)
  try {
    db.prepare('INSERT INTO x VALUES (?)').run('y'.repeat(100_000))
  } catch (err) {
    return err as Error
  } finally {
    db.close()
  }
  throw new Error('expected SQLITE_FULL')
}

function failing (t: Test, method: 'get' | 'set' | 'destroy'): void {
  const real = SqliteSessionStore.prototype[method]
  const error = sqliteFull()
  t.equal((error as { code?: string }).code, 'SQLITE_FULL')
  SqliteSessionStore.prototype[method] = async function () {
    throw error
  } as never
  t.teardown(() => { SqliteSessionStore.prototype[method] = real as never })
}

async function app (t: Test) {
  return await buildApp(t, {}, (app) => {
    app.get('/', async (request) => `home of ${request.ssoUser?.username ?? 'nobody'}`)
    app.get('/api/me', async (request) => ({ user: request.ssoUser?.username ?? null }))
  })
}

t.test('a session that cannot be saved: a 503 page, never JSON or a stack trace, and no cookie that pretends', async (t) => {
  const { app: service, gateway } = await app(t)
  const browser = new Browser(service)
  await signIn(browser, gateway, { token: 't0' })
  failing(t, 'set')
  // The sign-out page (it writes the CSRF secret into the session).
  const page = await browser.request('/logout/')
  t.equal(page.statusCode, 503)
  t.match(page.headers['content-type'], /text\/html/)
  t.equal(page.headers['retry-after'], '60')
  t.match(page.body, /id="database-unavailable"/)
  t.match(page.body, /cannot keep your session right now/)
  t.notMatch(page.body, /SQLITE|"code"/)
  // A new sign-in: the redirect to the gateway would lose its request token, so it is not sent.
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 't1' })
  const login = await new Browser(service).request('/login/')
  t.equal(login.statusCode, 503)
  t.equal(login.headers.location, undefined)
  t.equal(login.headers['set-cookie'], undefined)
  // An API client of the host app gets JSON that says the same.
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 't2' })
  const api = await service.inject({ url: '/login/', headers: { accept: 'application/json' } })
  t.equal(api.statusCode, 503)
  t.same(api.json(), { error: 'This app cannot keep your session right now (its database is unavailable). Please try again in a few minutes.', code: 'FST_SSO_SERVICE_DATABASE_UNAVAILABLE' })
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 't3' })
  const bare = await service.inject({ url: '/login/' }) // no Accept header at all
  t.equal(bare.statusCode, 503)
  t.equal(bare.json().code, 'FST_SSO_SERVICE_DATABASE_UNAVAILABLE')
})

t.test('a session that cannot be deleted: the sign-out page says so (503 HTML)', async (t) => {
  const { app: service, gateway } = await app(t)
  const browser = new Browser(service)
  await signIn(browser, gateway)
  const form = await browser.request('/logout/')
  failing(t, 'destroy')
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrfOf(form.body), scope: 'app' } })
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /cannot keep your session right now/)
})

t.test('a session that cannot be read: the request is anonymous (fails closed), the page still renders', async (t) => {
  const { app: service, gateway, logs } = await app(t)
  const browser = new Browser(service)
  await signIn(browser, gateway)
  failing(t, 'get')
  const home = await browser.request('/')
  t.equal(home.statusCode, 200)
  t.equal(home.body, 'home of nobody')
  t.ok(logs.some((l) => l.level === 50 && /reading a session failed/.test(String(l.msg))), 'logged as an error')
})

t.test('a SQLite failure inside a sign-in (a locked database) is a 503 page that names the cause', async (t) => {
  const file = join(t.testdir({}), 'service.sqlite')
  const { app: service, gateway } = await buildApp(t, { database: file })
  const browser = new Browser(service)
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok' })
  gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(200, { authenticated: true, user_identy: 'alice', next_url: '/', user: { username: 'alice', user_id: 'u1', is_active: true } })
  gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(200, { ok: true })
  await browser.request('/login/')
  const other = new Database(file)
  other.exec('BEGIN EXCLUSIVE')
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close() })
  const res = await browser.request('/sso/accept/') // waits out the 5 s busy timeout, twice
  other.exec('ROLLBACK')
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /cannot keep your session right now/)
})
