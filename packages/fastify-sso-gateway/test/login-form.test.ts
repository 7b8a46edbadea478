import t from 'tap'
import { Browser, buildApp, call, PASSWORD, seed, storeOf } from './helpers.js'

async function obtain (app: Parameters<typeof call>[0], secret: string): Promise<string> {
  return ((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }).token
}

t.test('the login POST needs the CSRF token of the form', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = await obtain(app, secret)
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  t.match(form.body, /name="_csrf" value="[^"]+"/)

  const missing = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD })
  t.equal(missing.statusCode, 403)
  t.match(missing.headers['content-type'], /text\/html/)
  t.match(missing.body, /This form has expired or did not come from this site/)
  t.match(missing.headers['content-security-policy'], /frame-ancestors 'none'/)

  const wrong = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: 'forged' })
  t.equal(wrong.statusCode, 403)

  const crossSite = await new Browser(app).request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(crossSite.statusCode, 403, 'a token from another browser session does not help')

  const ok = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(ok.statusCode, 303, 'the request token is still usable after refused posts')
})

t.test('unknown user, wrong password, disabled user and password-less account get the same answer', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await app.ssoGateway.createUser({ username: 'carol', password: PASSWORD, isActive: false })
  await app.ssoGateway.createUser({ username: 'dave' })
  const browser = new Browser(app)
  const bodies: string[] = []
  for (const [username, password] of [['mallory', PASSWORD], ['alice', 'wrong password'], ['carol', PASSWORD], ['dave', PASSWORD]] as const) {
    const token = await obtain(app, secret)
    const form = await browser.request('GET', `/login/?sso=${token}`)
    const res = await browser.request('POST', `/login/?sso=${token}`, { username, password, _csrf: Browser.csrf(form.body) })
    t.equal(res.statusCode, 401, username)
    t.match(res.body, /Wrong username or password\./)
    t.equal(res.headers['cache-control'], 'no-store')
    bodies.push(res.body.replace(/name="_csrf" value="[^"]+"/, '').replace(/\?sso=[^"]+"/, '').replace(`value="${username}"`, ''))
  }
  t.equal(new Set(bodies).size, 1, 'the pages differ only in the echoed username and tokens')
})

t.test('an account whose stored hash is not argon2 fails like a wrong password', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const store = storeOf(app)
  store.db.prepare("UPDATE users SET password_hash = 'pbkdf2_sha256$260000$salt$hash' WHERE username = 'alice'").run()
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const res = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 401)
  t.match(res.body, /Wrong username or password/)
})

t.test('usernames are canonical: ALICE and full-width ａｌｉｃｅ reach alice', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  for (const spelling of ['ALICE', 'ａｌｉｃｅ', 'Alice']) {
    const token = await obtain(app, secret)
    const browser = new Browser(app)
    const form = await browser.request('GET', `/login/?sso=${token}`)
    const res = await browser.request('POST', `/login/?sso=${token}`, { username: spelling, password: PASSWORD, _csrf: Browser.csrf(form.body) })
    t.equal(res.statusCode, 303, spelling)
    t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: token })).json().user_identy, 'alice')
  }
})

t.test('the session id changes at sign-in (no fixation); sign-in without a request goes to /welcome/', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  t.notOk(browser.cookies.has('sso_gateway_session'), 'the anonymous form has no session: nothing to fixate')
  const res = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/welcome/')
  const before = browser.cookies.get('sso_gateway_session')
  t.ok(before)
  // Entering the password again in that session gives it a new id too.
  const again = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf((await browser.request('GET', '/logout/')).body) })
  t.equal(again.statusCode, 303)
  t.not(browser.cookies.get('sso_gateway_session'), before, 'a new session id')
  const cookie = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('sso_gateway_session=')) as string
  t.match(cookie, /HttpOnly/)
  t.match(cookie, /SameSite=Lax/)
  t.match((await browser.request('GET', '/welcome/')).body, /Signed in as <strong id="who">alice/)
})

t.test('overlong passwords are refused without hashing', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const csrf = Browser.csrf(form.body)
  const ascii = await browser.request('POST', '/login/', { username: 'alice', password: 'a'.repeat(1025), _csrf: csrf })
  t.equal(ascii.statusCode, 400, 'longer than the field allows')
  t.match(ascii.body, /This request was not valid/)
  t.notMatch(ascii.body, /aaaaaaaaaa/, 'the password is not echoed')
  // 1024 characters, 2048 UTF-16 units: within the schema, over the hasher's limit.
  const started = Date.now()
  const astral = await browser.request('POST', '/login/', { username: 'alice', password: '😀'.repeat(1024), _csrf: csrf })
  t.equal(astral.statusCode, 401)
  t.match(astral.body, /Wrong username or password/)
  t.ok(Date.now() - started < 1000)
})

t.test('echoed input is escaped', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const res = await browser.request('POST', '/login/', { username: '"><script>alert(1)</script>', password: 'x', _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 401)
  t.notMatch(res.body, /<script>/)
  t.match(res.body, /&lt;script&gt;/)
})

t.test('per-account throttling: after 10 failures, 429 with Retry-After, whatever the spelling or password', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  let page = await browser.request('GET', '/login/')
  for (let i = 0; i < 10; i++) {
    page = await browser.request('POST', '/login/', { username: 'alice', password: `guess ${i}`, _csrf: Browser.csrf(page.body) })
    t.equal(page.statusCode, 401, `failure ${i + 1}`)
  }
  const blocked = await new Browser(app).request('GET', '/login/')
  t.equal(blocked.statusCode, 200, 'the form itself still shows')
  const locked = await browser.request('POST', '/login/', { username: 'ＡＬＩＣＥ', password: PASSWORD, _csrf: Browser.csrf(page.body) })
  t.equal(locked.statusCode, 429)
  t.ok(Number(locked.headers['retry-after']) > 0 && Number(locked.headers['retry-after']) <= 900)
  t.match(locked.body, /Too many failed attempts/)

  await app.ssoGateway.createUser({ username: 'bob', password: PASSWORD })
  const other = await browser.request('POST', '/login/', { username: 'bob', password: PASSWORD, _csrf: Browser.csrf(locked.body) })
  t.equal(other.statusCode, 303, 'another account is not affected')
})

t.test('a successful sign-in clears the failure count', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  let browser = new Browser(app)
  let page = await browser.request('GET', '/login/')
  for (let i = 0; i < 9; i++) page = await browser.request('POST', '/login/', { username: 'alice', password: 'nope', _csrf: Browser.csrf(page.body) })
  t.equal((await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(page.body) })).statusCode, 303)
  browser = new Browser(app)
  page = await browser.request('GET', '/login/')
  for (let i = 0; i < 9; i++) page = await browser.request('POST', '/login/', { username: 'alice', password: 'nope', _csrf: Browser.csrf(page.body) })
  t.equal(page.statusCode, 401, 'still not throttled')
})

t.test('per-IP rate limit on password POSTs: 429 page with Retry-After', async (t) => {
  const { app, agent } = await buildApp({ loginRateLimit: { max: 3, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  let page = await browser.request('GET', '/login/')
  const users = ['u1', 'u2', 'u3']
  for (const u of users) {
    page = await browser.request('POST', '/login/', { username: u, password: 'x', _csrf: Browser.csrf(page.body) })
    t.equal(page.statusCode, 401)
  }
  const limited = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(page.body) })
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.match(limited.headers['content-type'], /text\/html/)
  t.match(limited.body, /Too many attempts/)
})

t.test('two browsers completing one request at once: one wins, the other is told', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = await obtain(app, secret)
  const a = new Browser(app)
  const b = new Browser(app)
  const formA = await a.request('GET', `/login/?sso=${token}`)
  const formB = await b.request('GET', `/login/?sso=${token}`)
  const [ra, rb] = await Promise.all([
    a.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(formA.body) }),
    b.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(formB.body) })
  ])
  t.same([ra.statusCode, rb.statusCode].sort(), [303, 400])
  const loser = ra.statusCode === 400 ? ra : rb
  t.match(loser.body, /It was used in the meantime/)
  t.match(loser.body, /href="http:\/\/alpha.test\/login\/"/)
})

t.test('a service that does not take update_account in time does not block the sign-in', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'down', baseUrl: 'http://down.test' })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  // No interceptor: the MockAgent refuses the connection.
  const token = await obtain(app, secret)
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const res = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 303)
  t.match(res.headers.location, /^http:\/\/down\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  const [status] = await app.ssoGateway.events.status()
  t.match(status, { pending: 1, dead: 0 }, 'the event stays queued for a retry')
})
