import t from 'tap'
import { audits, Browser, buildApp, SERVICE_TOKEN, signIn } from './helpers.js'

function csrfOf (html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html)
  if (m === null) throw new Error('no CSRF field on the page')
  return m[1] as string
}

t.test('GET /logout/ shows a form and logs nobody out', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const page = await browser.request('/logout/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.headers['content-security-policy'], /form-action 'self'/)
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.body, /<form method="post" action="\/logout\/" class="sso-button-form">/)
  t.match(page.body, /Signed in as alice/)
  t.ok(csrfOf(page.body))
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'still signed in after the GET')
})

t.test('POST /logout/ with the CSRF token ends the session, tells the gateway, 303', async (t) => {
  const { app, gateway, logs } = await buildApp(t, { afterLogoutUrl: '/bye', database: t.testdir() + '/s.sqlite' })
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: 'gw-9' })
  const other = new Browser(app)
  await signIn(other, gateway, { ssoSession: 'gw-10' })
  const csrf = csrfOf((await browser.request('/logout')).body)
  let told = ''
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, (o) => {
    told = String(o.body)
    return { ok: true }
  })
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/bye')
  t.equal(browser.cookies.has('sso_service_session'), false, 'the cookie is cleared')
  const form = new URLSearchParams(told)
  t.equal(form.get('token'), SERVICE_TOKEN)
  t.equal(form.get('user_identy'), 'alice')
  t.equal(form.get('sso_session'), 'gw-9')
  t.match(audits(logs, 'logout'), [{ user: 'alice' }])
  t.equal((await browser.request('/sso/test/')).statusCode, 302)
  t.equal((await other.request('/sso/test/')).statusCode, 200, 'the gateway, not this POST, ends other SSO sessions')
})

t.test('the session is destroyed server-side: replaying the old cookie is anonymous', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const cookie = browser.cookies.get('sso_service_session') as string
  const csrf = csrfOf((await browser.request('/logout/')).body)
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, { ok: true })
  await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf } })
  const replay = await app.inject({ url: '/sso/test/', headers: { cookie: `sso_service_session=${cookie}` } })
  t.equal(replay.statusCode, 302)
})

t.test('a gateway failure is logged and never blocks the logout', async (t) => {
  const { app, gateway, logs } = await buildApp(t, { requestTimeout: 50 })
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: null })
  const csrf = csrfOf((await browser.request('/logout/')).body)
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, { ok: true }).delay(3000)
  const started = Date.now()
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/sso/signed-out/?scope=everywhere&gateway=unreachable', 'no SSO session id: the gateway ends every session')
  t.ok(Date.now() - started < 2000, 'the 3 s answer was not waited for (timeout 50 ms)')
  t.match(audits(logs, 'logout_report_failed'), [{ user: 'alice', code: 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE' }])
  t.equal((await browser.request('/sso/test/')).statusCode, 302)
})

t.test('a POST without a valid CSRF token is refused and logs nobody out', async (t) => {
  const { app, gateway, logs } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  await browser.request('/logout/')
  const forged = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: 'forged' } })
  t.equal(forged.statusCode, 403)
  t.match(forged.headers['content-type'], /text\/html/)
  const missing = await browser.request({ method: 'POST', url: '/logout/', payload: {} })
  t.equal(missing.statusCode, 403)
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  t.equal(audits(logs, 'csrf_rejected').length, 2)
  const noSecret = new Browser(app)
  await signIn(noSecret, gateway)
  const cross = await noSecret.request({ method: 'POST', url: '/logout/', payload: { _csrf: 'x' } })
  t.equal(cross.statusCode, 403, 'a session that never saw the form has no CSRF secret')
})

t.test('anonymous visitors: the GET page says so and offers no form; a POST is refused', async (t) => {
  const { app } = await buildApp(t)
  const browser = new Browser(app)
  const page = await browser.request('/logout/')
  t.equal(page.statusCode, 200)
  t.match(page.body, /not signed in/)
  t.notMatch(page.body, /<form/)
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: 'x' } })
  t.equal(res.statusCode, 403)
})

t.test('usernames are escaped on the page', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway, { username: '<script>x</script>', user: null })
  const page = await browser.request('/logout/')
  t.notMatch(page.body, /<script>/)
  t.match(page.body, /&lt;script&gt;x&lt;\/script&gt;/)
})
