import t from 'tap'
import { Browser, buildApp, GATEWAY, SERVICE_TOKEN, signIn } from './helpers.js'

t.test('login obtains a request token and sends the browser to the gateway', async (t) => {
  const { app, gateway } = await buildApp(t)
  let sent = ''
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, (opts) => {
    sent = String(opts.body)
    return { token: 'tok-1' }
  })
  const browser = new Browser(app)
  const res = await browser.request('/login/?next=%2Fdashboard%3Ftab%3D2')
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, `${GATEWAY}/login/?sso=tok-1`)
  t.equal(res.headers['cache-control'], 'no-store')
  const form = new URLSearchParams(sent)
  t.equal(form.get('token'), SERVICE_TOKEN)
  t.equal(form.get('next_url'), '/dashboard?tab=2')
  t.ok(browser.cookies.has('sso_service_session'), 'a session binds the flow to this browser')
  const cookie = res.cookies[0] as { httpOnly?: boolean, sameSite?: string, path?: string }
  t.equal(cookie.httpOnly, true)
  t.equal(cookie.sameSite, 'Lax')
  t.equal(cookie.path, '/')
})

t.test('server calls go to gatewayInternalUrl, the browser to gatewayUrl; no trailing slash works too', async (t) => {
  const { app, agent } = await buildApp(t, { gatewayInternalUrl: 'http://gateway.internal:8080/' })
  agent.get('http://gateway.internal:8080').intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok-2' })
  const res = await app.inject('/login')
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, `${GATEWAY}/login/?sso=tok-2`)
})

t.test('an already signed-in user is sent straight to next', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const res = await browser.request('/login/?next=/inbox')
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/inbox')
})

t.test('an unsafe next falls back to /', async (t) => {
  const { app, gateway } = await buildApp(t)
  const sent: string[] = []
  for (let i = 0; i < 3; i++) {
    gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, (opts) => {
      sent.push(new URLSearchParams(String(opts.body)).get('next_url') ?? '')
      return { token: 'tok' }
    })
  }
  for (const next of ['//evil.example', 'https://evil.example/', '/\\evil.example']) {
    const res = await app.inject({ url: `/login/?next=${encodeURIComponent(next)}` })
    t.equal(res.statusCode, 302)
  }
  t.same(sent, ['/', '/', '/'])
})

t.test('gateway unreachable: 503 page with a retry link, no session created', async (t) => {
  const { app, gateway, logs } = await buildApp(t)
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).replyWithError(new Error('connect ECONNREFUSED'))
  const browser = new Browser(app)
  const res = await browser.request('/login?next=/reports')
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.match(res.body, /unavailable/)
  t.match(res.body, 'href="/login/?next=%2Freports"')
  t.equal(browser.cookies.size, 0, 'no session was created')
  t.equal(logs.filter((l) => l.audit === 'login_failed').length, 1)
})

t.test('gateway answers 500 or refuses: 503 / 400 page', async (t) => {
  const { app, gateway } = await buildApp(t)
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(500, 'oops')
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(401, { error: 'unknown service token <b>' })
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { nothing: true })
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, 'not json')
  const r1 = await app.inject('/login/')
  t.equal(r1.statusCode, 503)
  const r2 = await app.inject('/login/')
  t.equal(r2.statusCode, 400)
  t.match(r2.body, 'unknown service token &lt;b&gt;')
  const r3 = await app.inject('/login/')
  t.equal(r3.statusCode, 503)
  t.match(r3.body, 'no request token')
  const r4 = await app.inject('/login/')
  t.equal(r4.statusCode, 503)
  t.match(r4.body, 'not JSON')
})

t.test('an oversized gateway answer is not read to the end', async (t) => {
  const { app, gateway } = await buildApp(t)
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, JSON.stringify({ token: 'x', pad: 'y'.repeat(100 * 1024) }))
  const res = await app.inject('/login/')
  t.equal(res.statusCode, 503)
})

t.test('a slow gateway is cut off by requestTimeout', async (t) => {
  const { app, gateway } = await buildApp(t, { requestTimeout: 50 })
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'late' }).delay(3000)
  const started = Date.now()
  const res = await app.inject('/login/')
  t.equal(res.statusCode, 503)
  // A wide margin (the machine is shared): the answer comes after 3 s, the timeout is 50 ms.
  t.ok(Date.now() - started < 2000, 'did not wait for the slow answer')
})
