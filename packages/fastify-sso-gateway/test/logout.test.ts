import t from 'tap'
import { Browser, buildApp, PASSWORD, seed, signIn } from './helpers.js'

t.test('GET /logout/ shows a form and signs nobody out', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  for (const url of ['/logout/', '/logout']) {
    const page = await browser.request('GET', url)
    t.equal(page.statusCode, 200)
    t.match(page.body, /Sign out\?/)
    t.match(page.body, /<form method="post" action="\/logout\/" class="sso-button-form">/)
    t.match(page.body, /signed in as alice/)
    t.match(page.body, /class="sso-button sso-button-primary" id="logout">Sign out</, 'Sign out: the usual choice')
    t.match(page.body, /class="sso-button sso-button-danger" id="logout-everywhere">Sign out everywhere</, 'Sign out everywhere: styled apart, as destructive')
  }
  t.match((await browser.request('GET', '/welcome/')).body, /Signed in as <strong id="who">alice/, 'still signed in')
  t.same(await app.ssoGateway.events.dead(), [])
})

t.test('POST /logout/ scope=everywhere ends every session of the user and tells every enabled service', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  await app.ssoGateway.registerService({ name: 'gamma', baseUrl: 'http://gamma.test' })
  await app.ssoGateway.setServiceEnabled('gamma', false)
  const received: Array<{ origin: string, body: unknown }> = []
  agent.get('http://beta.test').intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (opts) => { received.push({ origin: 'beta', body: JSON.parse(String(opts.body)) }); return { ok: true } }).persist()

  const browser = new Browser(app)
  const other = new Browser(app)
  await signIn(app, browser, secret)
  await signIn(app, other, secret)
  await app.ssoGateway.events.flush()

  const confirm = await browser.request('GET', '/logout/')
  const noCsrf = await browser.request('POST', '/logout/', {})
  t.equal(noCsrf.statusCode, 403, 'no CSRF token: refused')
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'still signed in')

  const done = await browser.request('POST', '/logout/', { _csrf: Browser.csrf(confirm.body), scope: 'everywhere' })
  t.equal(done.statusCode, 200)
  t.match(done.body, /You are signed out/)
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/)
  t.match((await other.request('GET', '/welcome/')).body, /Nobody is signed in/, 'every session of the user ended')

  await app.ssoGateway.events.flush()
  t.same(received.filter((r) => (r.body as { type: string }).type === 'deauthenticate'),
    [{ origin: 'beta', body: { type: 'deauthenticate', username: 'alice', user_id: (received[0]?.body as { user_id: string }).user_id, reason: 'logout_everywhere', issued_at: (received[0]?.body as { issued_at: number }).issued_at } }],
    'beta is told; disabled gamma is not')
  const statuses = await app.ssoGateway.events.status()
  t.same(statuses, [], 'nothing left pending: alpha took it too')
})

t.test('POST /logout/ (scope=session, the default) ends this browser\'s SSO session only', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  const received: Array<{ origin: string, body: Record<string, unknown> }> = []
  for (const origin of ['alpha', 'beta']) {
    agent.get(`http://${origin}.test`).intercept({ path: '/sso/event/', method: 'POST' })
      .reply(200, (opts) => { received.push({ origin, body: JSON.parse(String(opts.body)) }); return { ok: true } }).persist()
  }
  const laptop = new Browser(app)
  const phone = new Browser(app)
  await signIn(app, laptop, secret)
  await signIn(app, phone, secret)
  const laptopSso = (await app.ssoGateway.listSessions('alice')).map((s) => s.id)
  t.equal(laptopSso.length, 2, 'two SSO sessions')
  await app.ssoGateway.events.flush()
  received.length = 0

  const confirm = await laptop.request('GET', '/logout/')
  t.match(confirm.body, /id="logout"/)
  t.match(confirm.body, /id="logout-everywhere"/)
  const done = await laptop.request('POST', '/logout/', { _csrf: Browser.csrf(confirm.body) })
  t.match(done.body, /signed out of every application in this browser/)
  t.match((await laptop.request('GET', '/welcome/')).body, /Nobody is signed in/)
  t.match((await phone.request('GET', '/welcome/')).body, /id="who">alice/, 'the other device stays signed in')
  t.equal((await app.ssoGateway.listSessions('alice')).length, 1)

  await app.ssoGateway.events.flush()
  t.equal(received.length, 1, 'only the service the session reached is told')
  t.match(received[0], { origin: 'alpha', body: { type: 'deauthenticate', username: 'alice', reason: 'logout' } })
  t.ok(laptopSso.includes(received[0]?.body.sso_session as string), 'with the SSO session id')
})

t.test('signed-out pages for an anonymous browser', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const get = await browser.request('GET', '/logout/')
  t.equal(get.statusCode, 200)
  t.match(get.body, /You are signed out/)
  t.notMatch(get.body, /<form/)
  const form = await browser.request('GET', '/login/')
  const post = await browser.request('POST', '/logout', { _csrf: Browser.csrf(form.body) }) // the anonymous form's token
  t.equal(post.statusCode, 200)
  t.match(post.body, /You are signed out/)
  t.notMatch(post.headers.location ?? '', /./, 'never a redirect')
})

t.test('welcome page and stylesheet', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await app.ssoGateway.updateUser('alice', { displayName: 'Alice Liddell' })
  const browser = new Browser(app)
  const anon = await browser.request('GET', '/welcome')
  t.match(anon.body, /Nobody is signed in/)
  t.equal(anon.headers['cache-control'], 'no-store')
  t.equal(anon.headers['referrer-policy'], 'no-referrer')
  await signIn(app, browser, secret)
  const page = await browser.request('GET', '/welcome/')
  t.match(page.body, /id="who">Alice Liddell<\/strong> \(alice\)/)
  t.match(page.body, /name="_csrf"/)
  const css = await app.inject('/sso/style.css')
  t.equal(css.statusCode, 200)
  t.match(css.headers['content-type'], /text\/css/)
})
