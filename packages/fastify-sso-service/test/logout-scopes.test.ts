import t from 'tap'
import { audits, Browser, buildApp, csrfOf, signIn } from './helpers.js'

async function twoBrowsers (t: Parameters<typeof buildApp>[0], overrides: Parameters<typeof buildApp>[1] = {}) {
  const built = await buildApp(t, { database: t.testdir() + '/service.sqlite', ...overrides })
  const browser = new Browser(built.app)
  await signIn(browser, built.gateway, { ssoSession: 'gw-1' })
  const other = new Browser(built.app)
  await signIn(other, built.gateway, { ssoSession: 'gw-2' })
  const csrf = csrfOf((await browser.request('/logout/')).body)
  return { ...built, browser, other, csrf }
}

t.test('GET /logout/ offers the three scopes as POST forms with CSRF', async (t) => {
  const { browser } = await twoBrowsers(t)
  const page = await browser.request('/logout/')
  t.equal(page.statusCode, 200)
  t.equal(page.body.match(/<form method="post" action="\/logout\/"/g)?.length, 3)
  t.equal(page.body.match(/name="_csrf" value="[^"]+"/g)?.length, 3)
  t.match(page.body, /<input type="hidden" name="scope" value="app">\s*<button type="submit" class="sso-button sso-button-secondary" id="leave">Leave this app<\/button>/, 'leaving: the quiet choice')
  t.match(page.body, /<input type="hidden" name="scope" value="session">\s*<button type="submit" class="sso-button sso-button-primary" id="logout">Sign out<\/button>/)
  t.match(page.body, /<input type="hidden" name="scope" value="everywhere">\s*<button type="submit" class="sso-button sso-button-danger" id="logout-everywhere">Sign out everywhere<\/button>/,
    'signing out everywhere: styled as destructive, distinct from Sign out')
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'a GET signs nobody out')
})

t.test('scope=app ends only the local session and never calls the gateway', async (t) => {
  const { browser, other, csrf, gateway, logs } = await twoBrowsers(t)
  let called = false
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, () => { called = true; return { ok: true } }).persist()
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf, scope: 'app' } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/sso/signed-out/?scope=app')
  t.equal(called, false, 'the gateway is not told')
  t.equal((await browser.request('/sso/test/')).statusCode, 302)
  t.equal((await other.request('/sso/test/')).statusCode, 200)
  t.match(audits(logs, 'logout'), [{ user: 'alice', scope: 'app' }])
  const page = await browser.request(res.headers.location as string)
  t.equal(page.statusCode, 200)
  t.notMatch(page.body, /You are signed out/, 'not "signed out": the person is still signed in elsewhere')
  t.match(page.body, /<h1>You left this app<\/h1>/)
  t.match(page.body, /still signed in at the sign-in service/)
  t.match(page.body, /<a class="sso-button sso-button-primary" href="\/login\/" id="sign-in-again">Back to this app<\/a>/, 'a way back')
})

t.test('scope=session (the default) sends user_identy and sso_session', async (t) => {
  for (const payload of [{ scope: 'session' }, {}]) {
    await t.test(JSON.stringify(payload), async (t) => {
      const { browser, other, csrf, gateway } = await twoBrowsers(t)
      let told = ''
      gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, (o) => { told = String(o.body); return { ok: true } })
      const res = await browser.request({ method: 'POST', url: '/logout', payload: { _csrf: csrf, ...payload } })
      t.equal(res.statusCode, 303)
      t.equal(res.headers.location, '/sso/signed-out/?scope=session')
      const form = new URLSearchParams(told)
      t.equal(form.get('user_identy'), 'alice')
      t.equal(form.get('sso_session'), 'gw-1')
      t.equal((await browser.request('/sso/test/')).statusCode, 302)
      t.equal((await other.request('/sso/test/')).statusCode, 200, 'the other SSO session ends only if the gateway says so')
      t.match((await browser.request('/sso/signed-out/?scope=session')).body, /Your other devices stay signed in/)
    })
  }
})

t.test('scope=everywhere sends only user_identy', async (t) => {
  const { browser, csrf, gateway, logs } = await twoBrowsers(t)
  let told = ''
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, (o) => { told = String(o.body); return { ok: true } })
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf, scope: 'everywhere' } })
  t.equal(res.headers.location, '/sso/signed-out/?scope=everywhere')
  const form = new URLSearchParams(told)
  t.equal(form.get('user_identy'), 'alice')
  t.equal(form.has('sso_session'), false)
  t.match(audits(logs, 'logout'), [{ scope: 'everywhere' }])
  t.match((await browser.request(res.headers.location as string)).body, /every app, on every device/)
})

t.test('an unknown scope is refused and signs nobody out', async (t) => {
  const { browser, csrf } = await twoBrowsers(t)
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf, scope: 'galaxy' } })
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /text\/html/)
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
})

t.test('a custom afterLogoutUrl is used as it is', async (t) => {
  const { browser, csrf, gateway } = await twoBrowsers(t, { afterLogoutUrl: '/goodbye' })
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, { ok: true })
  const res = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrf, scope: 'everywhere' } })
  t.equal(res.headers.location, '/goodbye')
})

t.test('the signed-out page: unknown scope, unreachable gateway, signed-in visitor', async (t) => {
  const { app, gateway } = await buildApp(t)
  const anon = await app.inject('/sso/signed-out')
  t.equal(anon.statusCode, 200)
  t.match(anon.body, /You are signed out of this app/)
  t.notMatch(anon.body, /gateway-unreachable/)
  t.match((await app.inject('/sso/signed-out/?scope=%3Cx%3E')).body, /You are signed out of this app/)
  const down = await app.inject('/sso/signed-out/?scope=session&gateway=unreachable')
  t.match(down.body, /id="gateway-unreachable"/)
  t.match(down.body, /href="http:\/\/gateway.test\/logout\/"/)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const signedIn = await browser.request('/sso/signed-out/?scope=session')
  t.match(signedIn.body, /You are signed in/)
  t.match(signedIn.body, /Signed in as alice/)
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'the page changes nothing')
})

t.test('the signed-out page never signs anyone in by itself', async (t) => {
  const { app, agent } = await buildApp(t)
  // No gateway call may happen: MockAgent refuses unmatched requests.
  const browser = new Browser(app)
  const page = await browser.request('/sso/signed-out/?scope=everywhere')
  t.equal(page.statusCode, 200)
  t.equal(browser.cookies.size, 0, 'no session is started')
  t.notMatch(page.body, /http-equiv|<script/)
  t.equal(agent.pendingInterceptors().length, 0)
})
