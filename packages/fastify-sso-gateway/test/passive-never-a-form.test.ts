import t from 'tap'
import { Browser, buildApp, call, obtain, seed, signIn } from './helpers.js'

// Risk: a passive check (prompt=none) by a user without access showed the "No access" page,
// with a sign-out form. Passive means never a page to act on.

t.test('prompt=none by a signed-in user without access: straight back to the service, which hears login_required', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const beta = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test', access: { users: [] } })
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  const token = await obtain(app, beta.secret, { prompt: 'none' })
  const res = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, 'http://beta.test/sso/accept/')
  t.notMatch(res.body, /<form/)
  const got = await call(app, '/sso/get/', { token: beta.secret, authentication_token: token })
  t.same(got.json(), { authenticated: false, reason: 'login_required' })

  const active = await obtain(app, beta.secret)
  const page = await browser.request('GET', `/login/?sso=${active}`)
  t.equal(page.statusCode, 403, 'an active sign-in still explains the refusal')
  t.match(page.body, /No access to beta/)
})
