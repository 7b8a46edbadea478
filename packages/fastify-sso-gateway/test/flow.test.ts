import t from 'tap'
import { Browser, buildApp, call, PASSWORD, seed } from './helpers.js'

t.test('a service obtains a token, the user signs in, the service reads and redeems it', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)

  const obtained = await call(app, '/sso/obtain/', { token: secret, next_url: '/dashboard?tab=1' })
  t.equal(obtained.statusCode, 200)
  const token = (obtained.json() as { token: string }).token
  t.match(token, /^[A-Za-z0-9_-]{43}$/)

  const pending = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(pending.statusCode, 409, 'get before sign-in is pending')
  t.equal(pending.json().code, 'FST_SSO_GATEWAY_PENDING')

  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(form.statusCode, 200)
  t.match(form.body, /<h1>Sign in<\/h1>\s*<p class="sso-lead">to continue to alpha<\/p>/)
  t.match(form.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(form.headers['cache-control'], 'no-store')

  const wrong = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: 'nope', _csrf: Browser.csrf(form.body) })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, /Wrong username or password/)

  const ok = await browser.request('POST', `/login/?sso=${token}`, { username: 'ALICE', password: PASSWORD, _csrf: Browser.csrf(wrong.body) })
  t.equal(ok.statusCode, 303)
  t.match(ok.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)

  const got = await call(app, '/sso/get', { token: secret, authentication_token: token })
  t.equal(got.statusCode, 200)
  const endsAt = (got.json() as { sso_session_ends_at: number }).sso_session_ends_at
  t.ok(endsAt > Date.now() + 12 * 3_600_000 - 60_000 && endsAt <= Date.now() + 12 * 3_600_000, 'the SSO session ends at sign-in + absoluteTimeout')
  t.match(got.json(), { authenticated: true, user_identy: 'alice', next_url: '/dashboard?tab=1', user: { username: 'alice', email: 'alice@example.test', is_active: true } })

  const used = await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  t.same(used.json(), { ok: true })
  const replay = await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  t.equal(replay.statusCode, 404)
  const reread = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(reread.statusCode, 404)

  const welcome = await browser.request('GET', '/welcome/')
  t.match(welcome.body, /Signed in as <strong id="who">alice/)
})
