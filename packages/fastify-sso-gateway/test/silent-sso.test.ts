import t from 'tap'
import { Browser, buildApp, call, seed, signIn } from './helpers.js'

t.test('a second service signs in silently: no form, a 302 straight back', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const beta = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  const events: string[] = []
  agent.get('http://beta.test').intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (opts) => { events.push(String(opts.body)); return { ok: true } }).persist()

  const browser = new Browser(app)
  const first = await signIn(app, browser, secret)
  const firstGet = (await call(app, '/sso/get/', { token: secret, authentication_token: first })).json()

  const { token } = (await call(app, '/sso/obtain/', { token: beta.secret, next_url: '/b' })).json() as { token: string }
  const res = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(res.statusCode, 302, 'a redirect, not a form')
  t.match(res.headers.location, /^http:\/\/beta\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.notMatch(res.body, /password/)
  t.equal(events.length, 1, 'beta got update_account before the browser came back')
  t.match(JSON.parse(events[0]!), { type: 'update_account', username: 'alice' })

  const got = await call(app, '/sso/get/', { token: beta.secret, authentication_token: token })
  t.match(got.json(), { authenticated: true, user_identy: 'alice', next_url: '/b', sso_session: firstGet.sso_session }, 'the same SSO session')
})

t.test('a signed-in browser at /login/ without a request goes to /welcome/', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  const res = await browser.request('GET', '/login/')
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/welcome/')
})

t.test('an anonymous browser gets the form; a dead link gets an explanation', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  const plain = await browser.request('GET', '/login')
  t.equal(plain.statusCode, 200)
  t.match(plain.body, /action="\/login\/"/)
  t.notMatch(plain.body, /continue to/)

  const unknown = await browser.request('GET', '/login/?sso=unknown')
  t.equal(unknown.statusCode, 400)
  t.match(unknown.body, /no longer valid/)
  t.notMatch(unknown.body, /Sign in to \w+ again/, 'no service to send the user back to')

  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  await app.ssoGateway.setServiceEnabled('alpha', false)
  const disabled = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(disabled.statusCode, 400, 'a disabled service cannot complete a sign-in')
  t.notMatch(disabled.body, /alpha/)
})
