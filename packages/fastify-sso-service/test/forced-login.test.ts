import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { InvalidOptionError } from '../src/index.js'
import { audits, Browser, buildApp, mockSignIn, signIn } from './helpers.js'

function routes (app: FastifyInstance): void {
  app.get('/transfer', { preHandler: app.requireFreshLogin(5 * 60_000) }, async (request) => ({ ok: request.ssoUser?.username }))
}

t.test('a recent password entry goes through requireFreshLogin', async (t) => {
  const { app, gateway } = await buildApp(t)
  routes(app)
  const browser = new Browser(app)
  await signIn(browser, gateway, { authTime: Date.now() - 60_000, user: { username: 'alice', user_id: 'u-1', is_active: true, is_staff: false, is_superuser: false } })
  const res = await browser.request('/transfer')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: 'alice' })
  t.match((await browser.request('/sso/test/')).json().user, { userId: 'u-1', authTime: Number, attributes: {} })
})

t.test('an old or unknown authTime: the browser is sent to /login/?prompt=login, an API client gets 401', async (t) => {
  for (const authTime of [Date.now() - 10 * 60_000, undefined]) {
    await t.test(String(authTime), async (t) => {
      const { app, gateway } = await buildApp(t)
      routes(app)
      const browser = new Browser(app)
      await signIn(browser, gateway, authTime === undefined ? {} : { authTime })
      const res = await browser.request('/transfer?amount=5')
      t.equal(res.statusCode, 302)
      t.equal(res.headers.location, '/login/?prompt=login&next=%2Ftransfer%3Famount%3D5')
      t.equal(res.headers['cache-control'], 'no-store')
      const api = await app.inject({ url: '/transfer', headers: { accept: 'application/json', cookie: `sso_service_session=${browser.cookies.get('sso_service_session') as string}` } })
      t.equal(api.statusCode, 401)
      t.same(api.json(), { error: 'A recent sign-in is required', code: 'FST_SSO_SERVICE_FRESH_LOGIN_REQUIRED' })
    })
  }
  await t.test('anonymous', async (t) => {
    const { app } = await buildApp(t)
    routes(app)
    app.get('/*', { preHandler: app.requireFreshLogin(1000) }, async () => 'x')
    const res = await app.inject({ url: '/transfer', headers: { accept: 'text/html' } })
    t.equal(res.headers.location, '/login/?prompt=login&next=%2Ftransfer')
    t.equal((await app.inject('/transfer')).statusCode, 401)
    const unsafe = await app.inject({ url: '//evil.example/x', headers: { accept: 'text/html' } })
    t.equal(unsafe.headers.location, '/login/?prompt=login')
  })
})

t.test('prompt=login re-authenticates a signed-in user and refreshes authTime', async (t) => {
  const { app, gateway, logs } = await buildApp(t)
  routes(app)
  const browser = new Browser(app)
  await signIn(browser, gateway, { authTime: Date.now() - 60 * 60_000 })
  const sent = await browser.request('/transfer')
  let obtained = ''
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, (o) => { obtained = String(o.body); return { token: 'tok-f' } })
  gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(200, { authenticated: true, user_identy: 'alice', next_url: '/transfer', sso_session: 's', auth_time: Date.now() })
  gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(200, { ok: true })
  const login = await browser.request(sent.headers.location as string)
  t.equal(login.statusCode, 302, 'a signed-in user is not short-circuited when prompt=login')
  t.equal(login.headers.location, 'http://gateway.test/login/?sso=tok-f')
  t.equal(new URLSearchParams(obtained).get('prompt'), 'login')
  const back = await browser.request('/sso/accept/')
  t.equal(back.headers.location, '/transfer')
  t.equal((await browser.request('/transfer')).statusCode, 200)
  t.match(audits(logs, 'login'), [{ user: 'alice' }, { user: 'alice', prompt: 'login' }])
})

t.test('a forced sign-in that comes back without a fresh auth_time is refused (no loop)', async (t) => {
  for (const authTime of [undefined, Date.now() - 60 * 60_000]) {
    await t.test(String(authTime), async (t) => {
      const { app, gateway } = await buildApp(t)
      const browser = new Browser(app)
      mockSignIn(gateway, authTime === undefined ? {} : { authTime })
      await browser.request('/login/?next=/x&prompt=login')
      const res = await browser.request('/sso/accept/')
      t.equal(res.statusCode, 400)
      t.match(res.body, /did not confirm that the password was entered again/)
      t.match(res.body, 'href="/login/?prompt=login&amp;next=%2Fx"')
      t.equal((await browser.request('/sso/test/')).statusCode, 302)
    })
  }
})

t.test('requireFreshLogin checks its argument', async (t) => {
  const { app } = await buildApp(t)
  for (const bad of [0, -1, 1.5, Number.NaN, '60000']) {
    t.throws(() => app.requireFreshLogin(bad as number), InvalidOptionError)
  }
})
