// A request token authenticated but not yet redeemed belongs to its SSO session: when that
// session ends (sign-out here, everywhere, revocation, a password change), the token is burnt
// with it, so a service can never start a session tied to an SSO session that has ended.
import t, { type Test } from 'tap'
import { Browser, buildApp, call, obtain, PASSWORD, seed, signIn, ssoOf } from './helpers.js'

async function setup (t: Test) {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  const token = await signIn(app, browser, secret)
  return { app, secret, browser, token }
}

const refused = async (t: Test, app: Awaited<ReturnType<typeof setup>>['app'], secret: string, token: string): Promise<void> => {
  const get = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(get.statusCode, 404, '/sso/get/ refuses the token')
  t.match(get.json(), { code: 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN' })
  const used = await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  t.equal(used.statusCode, 404, '/sso/make_used/ refuses it')
}

t.test('signing out at the gateway burns the authenticated, unredeemed token of that browser', async (t) => {
  const { app, secret, browser, token } = await setup(t)
  const page = await browser.request('GET', '/logout/')
  t.equal((await browser.request('POST', '/logout/', { _csrf: Browser.csrf(page.body), scope: 'session' })).statusCode, 200)
  await refused(t, app, secret, token)
})

t.test('signing out everywhere, a revocation and a password change burn them too', async (t) => {
  const { app, secret, browser, token } = await setup(t)
  await app.ssoGateway.logoutUser('alice')
  await refused(t, app, secret, token)

  const second = await signIn(app, browser, secret)
  const sso = await ssoOf(app, secret, second)
  const third = await obtain(app, secret)
  t.equal((await browser.request('GET', `/login/?sso=${third}`)).statusCode, 302, 'authenticated silently, not yet redeemed')
  t.equal(await app.ssoGateway.revokeSession('alice', sso), true)
  await refused(t, app, secret, third)

  const laptop = new Browser(app)
  const fourth = await signIn(app, laptop, secret)
  t.equal(await app.ssoGateway.changePassword('alice', PASSWORD + '!', { endSessions: 'all' }), 1)
  await refused(t, app, secret, fourth)
})

t.test('the token of another SSO session of the same user is untouched', async (t) => {
  const { app, secret, browser } = await setup(t)
  const laptop = new Browser(app)
  const kept = await signIn(app, laptop, secret)
  const page = await browser.request('GET', '/logout/')
  await browser.request('POST', '/logout/', { _csrf: Browser.csrf(page.body), scope: 'session' })
  t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: kept })).statusCode, 200)
  t.equal((await call(app, '/sso/make_used/', { token: secret, authentication_token: kept })).statusCode, 200)
})
