import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { SqliteGatewayStore } from '../src/index.js'
import { Browser, buildApp, call, PASSWORD, seed } from './helpers.js'

t.test('a locked database answers 503 with Retry-After, not 500', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const { app, agent } = await buildApp({ database: file, busyTimeout: 0 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)

  const other = new Database(file, { timeout: 0 })
  other.exec('BEGIN EXCLUSIVE')
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK'); other.close() })

  const res = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.same(res.json(), { error: 'The sign-in service is temporarily unavailable, please retry', code: 'FST_SSO_GATEWAY_UNAVAILABLE' })

  // The form needs no session row (its CSRF token is bound to a cookie), so it still shows; the
  // sign-in cannot be saved. That failure happens in @fastify/session's onSend hook, again while
  // sending the error page, so Fastify's fallback answers: still a 503, and no stack trace.
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  t.equal(form.statusCode, 200, 'the form shows without writing to the database')
  const page = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(page.statusCode, 503, 'the sign-in cannot start a session')
  t.equal(page.headers['retry-after'], '5')
  t.notMatch(page.body, /at \w+ \(/, 'no stack trace')

  await t.rejects(app.ssoGateway.createUser({ username: 'bob', password: PASSWORD }), { code: 'SQLITE_BUSY' }, 'the decorator API sees the error')
  await t.rejects(app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' }), { code: 'SQLITE_BUSY' })

  other.exec('ROLLBACK')
  t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 200, 'works again once the lock is gone')
})

t.test('a store error is a 500 that shows nothing; I/O errors are 503', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  const { app, agent } = await buildApp({ store })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const real = store.tokens.create.bind(store)

  store.tokens.create = async () => { throw new Error('secret internals at /srv/db.ts:42') }
  const bug = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(bug.statusCode, 500)
  t.same(bug.json(), { error: 'Internal error', code: 'FST_SSO_GATEWAY_INTERNAL' })

  store.tokens.create = async () => { throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' }) }
  const io = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(io.statusCode, 503)
  t.equal(io.json().code, 'FST_SSO_GATEWAY_UNAVAILABLE')

  store.tokens.create = real
  const realGet = store.tokens.get.bind(store)
  store.tokens.get = async () => { throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }) }
  const busyPage = await new Browser(app).request('GET', '/login/?sso=abc')
  t.equal(busyPage.statusCode, 503)
  t.match(busyPage.headers['content-type'], /text\/html/)
  t.match(busyPage.body, /Temporarily unavailable/)
  t.match(busyPage.body, /The sign-in service is temporarily unavailable\. Try again in a moment\./)
  t.match(busyPage.body, /href="\/login\/\?sso=abc"/, 'the way back keeps the sign-in in progress')
  t.equal(busyPage.headers['retry-after'], '5')
  store.tokens.get = realGet
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  store.users.byUsername = async () => { throw new Error('boom') }
  const page = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(page.statusCode, 500)
  t.match(page.body, /Something went wrong/)
  t.match(page.body, /Something went wrong on our side/)
  t.notMatch(page.body, /boom/)
})

t.test('a failing housekeeping sweep is logged and retried next time', async (t) => {
  const realSetInterval = globalThis.setInterval
  const sweeps: Array<() => void> = []
  globalThis.setInterval = ((fn: () => void, ms: number) => {
    if (ms === 60_000) sweeps.push(fn)
    return realSetInterval(fn, ms)
  }) as typeof setInterval
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  let built
  try {
    built = await buildApp({ store })
  } finally {
    globalThis.setInterval = realSetInterval
  }
  t.teardown(() => built.app.close())
  let calls = 0
  store.tokens.prune = async () => { calls++; throw new Error('locked') }
  sweeps[0]!()
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(calls, 1, 'the sweep ran and its failure did not escape')
})
