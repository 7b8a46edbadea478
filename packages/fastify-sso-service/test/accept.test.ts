import t from 'tap'
import type { SsoAccount } from 'fastify-sso-protocol'
import type { AccountHookContext } from '../src/index.js'
import { audits, Browser, buildApp, mockSignIn, SERVICE_TOKEN, signIn } from './helpers.js'

t.test('a full sign-in lands on next, logged in, with a fresh session id', async (t) => {
  const seen: Array<[SsoAccount, AccountHookContext['source']]> = []
  const { app, gateway, logs } = await buildApp(t, { onAccount: async (account, ctx) => { seen.push([account, ctx.source]) } })
  const browser = new Browser(app)
  const bodies: Record<string, string> = {}
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok-a' })
  gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(200, (o) => {
    bodies.get = String(o.body)
    return { authenticated: true, user_identy: 'alice', next_url: '/reports?x=1', sso_session: 'gw-1', user: { username: 'alice', is_active: true, is_staff: true, is_superuser: false, email: 'a@example.com', display_name: 'Alice', team: 'blue' } }
  })
  gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(200, (o) => {
    bodies.makeUsed = String(o.body)
    return { ok: true }
  })
  await browser.request('/login/?next=/reports?x=1')
  const before = browser.cookies.get('sso_service_session')
  const res = await browser.request('/sso/accept/')
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/reports?x=1')
  t.equal(res.headers['cache-control'], 'no-store')
  t.not(browser.cookies.get('sso_service_session'), before, 'session id regenerated at login (no fixation)')
  for (const body of [bodies.get, bodies.makeUsed]) {
    const form = new URLSearchParams(body)
    t.equal(form.get('token'), SERVICE_TOKEN)
    t.equal(form.get('authentication_token'), 'tok-a')
  }
  t.equal(seen.length, 1)
  t.equal(seen[0]?.[1], 'sign-in')
  t.match(seen[0]?.[0], { username: 'alice', is_staff: true, team: 'blue' })

  const me = await browser.request('/sso/test/')
  t.equal(me.statusCode, 200)
  t.same(me.json(), {
    user: { username: 'alice', isActive: true, isStaff: true, isSuperuser: false, email: 'a@example.com', displayName: 'Alice', attributes: { team: 'blue' }, ssoSession: 'gw-1', authTime: null, userId: null }
  })
  t.match(audits(logs, 'login'), [{ user: 'alice' }])
  t.notMatch(JSON.stringify(logs), /tok-a/, 'request tokens never reach the logs')
  t.notMatch(JSON.stringify(logs), new RegExp(SERVICE_TOKEN), 'the service secret never reaches the logs')

  const again = await browser.request('/sso/accept')
  t.equal(again.statusCode, 400, 'the flow cannot be replayed in the same browser')
})

t.test('the old session id is dead after login', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  mockSignIn(gateway)
  await browser.request('/login/')
  const old = browser.cookies.get('sso_service_session') as string
  await browser.request('/sso/accept/')
  const res = await app.inject({ url: '/sso/test/', headers: { cookie: `sso_service_session=${old}` } })
  t.equal(res.statusCode, 302, 'the pre-login session id is anonymous')
})

t.test('a django-sso gateway (no user, no sso_session) still signs in', async (t) => {
  const seen: SsoAccount[] = []
  const { app, gateway } = await buildApp(t, { onAccount: (a) => { seen.push(a) } })
  const browser = new Browser(app)
  const res = await signIn(browser, gateway, { user: null, ssoSession: null, next: '/x' })
  t.equal(res.headers.location, '/x')
  t.same(seen, [{ username: 'alice', is_active: true, is_staff: false, is_superuser: false }])
  const me = await browser.request('/sso/test')
  t.same(me.json().user, { username: 'alice', isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {}, ssoSession: null, authTime: null, userId: null })
})

t.test('missing fields in the get answer get safe defaults', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok' })
  gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(200, { authenticated: true, user_identy: 'alice', user: { username: 'mallory', email: 'a@example.com', is_staff: 'yes' } })
  gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(200, { ok: true })
  await browser.request('/login/?next=/x')
  const res = await browser.request('/sso/accept/')
  t.equal(res.headers.location, '/', 'no next_url: /')
  const me = (await browser.request('/sso/test/')).json()
  t.match(me.user, { username: 'alice', isActive: true, isStaff: false, email: 'a@example.com' }, 'user_identy wins; flags must be real booleans')
})

t.test('accept in another browser session does nothing', async (t) => {
  const { app, gateway, logs } = await buildApp(t)
  mockSignIn(gateway)
  const victim = new Browser(app)
  await victim.request('/login/')
  const attacker = new Browser(app)
  attacker.cookies.set('sso_service_session', 'a-session-of-its-own')
  const res = await attacker.request('/sso/accept/')
  t.equal(res.statusCode, 400)
  t.match(res.body, /No sign-in is in progress/)
  t.match(res.body, 'href="/login/"')
  t.match(audits(logs, 'login_failed'), [{ reason: 'no sign-in in progress' }])
})

t.test('accept without the session cookie: the page and the log say why', async (t) => {
  const { app, gateway, logs } = await buildApp(t, { cookieSecure: true })
  mockSignIn(gateway)
  const browser = new Browser(app)
  const login = await browser.request('/login/')
  t.equal(login.statusCode, 302)
  t.equal(browser.cookies.size, 0, 'cookieSecure: true sets no cookie over plain http')
  const res = await browser.request('/sso/accept/?code=c')
  t.equal(res.statusCode, 400)
  t.match(res.body, /did not send back this site&#39;s session cookie/)
  t.match(res.body, /plain http while the cookie is only sent over https/)
  t.match(audits(logs, 'login_failed'), [{ reason: 'no session cookie', cookieName: 'sso_service_session', cookieSecure: true, protocol: 'http' }])
})

t.test('by default the session cookie is Secure exactly when the request came over HTTPS', async (t) => {
  const plain = await buildApp(t, { cookieSecure: undefined })
  mockSignIn(plain.gateway)
  const overHttp = (await plain.app.inject('/login/')).cookies.find((c) => c.name === 'sso_service_session')
  t.ok(overHttp, 'plain http: a cookie')
  t.notOk(overHttp?.secure, 'not Secure')
  const proxied = await buildApp(t, { cookieSecure: undefined }, undefined, { trustProxy: true })
  mockSignIn(proxied.gateway)
  const overHttps = (await proxied.app.inject({ url: '/login/', headers: { 'x-forwarded-proto': 'https' } })).cookies.find((c) => c.name === 'sso_service_session')
  t.equal(overHttps?.secure, true, 'HTTPS through a trusted proxy: Secure')
})

t.test('an unsafe next_url from the gateway is replaced by /', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  const res = await signIn(browser, gateway, { next: '//evil.example/' })
  t.equal(res.headers.location, '/')
})

t.test('gateway refusals and failures show a page with a try-again link', async (t) => {
  const scenarios: Array<{ name: string, get?: [number, unknown], makeUsed?: [number, unknown], status: number, text: RegExp }> = [
    { name: 'pending', get: [400, { error: 'the user has not signed in yet' }], status: 400, text: /not signed in yet/ },
    { name: 'not authenticated', get: [200, { authenticated: false }], status: 400, text: /not completed/ },
    { name: 'no user', get: [200, { authenticated: true, next_url: '/' }], status: 503, text: /no valid user/ },
    { name: 'get down', get: [502, 'bad gateway'], status: 503, text: /status 502/ },
    { name: 'replayed', makeUsed: [400, { error: 'token already used' }], status: 400, text: /already used/ },
    { name: 'make_used not ok', makeUsed: [200, { ok: false }], status: 400, text: /did not confirm/ },
    { name: 'error without message', makeUsed: [403, 'nope'], status: 400, text: /status 403/ }
  ]
  for (const s of scenarios) {
    await t.test(s.name, async (t) => {
      const { app, gateway, logs } = await buildApp(t)
      const browser = new Browser(app)
      gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok' })
      const [gs, gb] = s.get ?? [200, { authenticated: true, user_identy: 'alice', next_url: '/' }]
      gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(gs, gb as object)
      if (s.get === undefined) {
        const [ms, mb] = s.makeUsed as [number, unknown]
        gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(ms, mb as object)
      }
      await browser.request('/login/?next=/deep/page')
      const res = await browser.request('/sso/accept/')
      t.equal(res.statusCode, s.status)
      t.match(res.body, s.text)
      t.match(res.body, 'href="/login/?next=%2Fdeep%2Fpage"')
      t.match(res.headers['content-security-policy'], /default-src 'none'/)
      t.equal(audits(logs, 'login').length, 0)
      t.equal(audits(logs, 'login_failed').length, 1)
      const me = await browser.request('/sso/test/')
      t.equal(me.statusCode, 302, 'still anonymous')
    })
  }
})

t.test('a disabled account cannot sign in', async (t) => {
  let called = false
  const { app, gateway } = await buildApp(t, { onAccount: () => { called = true } })
  const browser = new Browser(app)
  const res = await signIn(browser, gateway, { user: { username: 'alice', is_active: false, is_staff: false, is_superuser: false } })
  t.equal(res.statusCode, 403)
  t.match(res.body, /disabled/)
  t.equal(called, false)
})

t.test('if onAccount throws, the login fails with a page and no session', async (t) => {
  const { app, gateway, logs } = await buildApp(t, { onAccount: async () => { throw new Error('db down: secret detail') } })
  const browser = new Browser(app)
  const res = await signIn(browser, gateway)
  t.equal(res.statusCode, 500)
  t.match(res.body, /could not set up the account/)
  t.notMatch(res.body, /secret detail/)
  t.equal(audits(logs, 'login_failed').length, 1)
  const me = await browser.request('/sso/test/')
  t.equal(me.statusCode, 302)
})

t.test('a service session never outlives the gateway session it came from', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSessionEndsAt: Date.now() + 1200 })
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'signed in')
  await new Promise((resolve) => setTimeout(resolve, 1300))
  const after = await browser.request('/sso/test/')
  t.equal(after.statusCode, 302, 'anonymous once the gateway session has ended')
})

t.test('the code the gateway put in the accept URL goes with the token to /sso/get/ and /sso/make_used/, and stays out of the logs', async (t) => {
  const { app, gateway, logs } = await buildApp(t)
  const browser = new Browser(app)
  const bodies: string[] = []
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok-c' })
  gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(200, (o) => {
    bodies.push(String(o.body))
    return { authenticated: true, user_identy: 'alice', next_url: '/', user: { username: 'alice', is_active: true, is_staff: false, is_superuser: false } }
  })
  gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(200, (o) => { bodies.push(String(o.body)); return { ok: true } })
  await browser.request('/login/')
  const res = await browser.request('/sso/accept/?code=browser-code-123')
  t.equal(res.statusCode, 302)
  t.same(bodies.map((b) => new URLSearchParams(b).get('code')), ['browser-code-123', 'browser-code-123'])
  t.notMatch(JSON.stringify(logs), /browser-code-123/, 'the code is redacted from the request log')
})
