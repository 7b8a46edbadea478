import t from 'tap'
import { Browser, buildApp, call, seed, signIn, sleep, ssoOf } from './helpers.js'

t.test('a service keeps an SSO session alive while the user works there; an ended one answers 404', async (t) => {
  const { app, agent } = await buildApp({ idleTimeout: 1500, absoluteTimeout: 60_000 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const { secret: betaSecret } = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  const browser = new Browser(app)
  const token = await signIn(app, browser, secret)
  const sso = await ssoOf(app, secret, token)

  // The browser never comes back to the gateway; the service says the session is in use.
  for (let i = 0; i < 4; i++) {
    await sleep(600)
    const res = await call(app, '/sso/touch/', { token: secret, sso_session: sso })
    t.equal(res.statusCode, 200, `touch ${i + 1}`)
  }
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'alive after 2.4 s with a 1.5 s idle limit')

  const foreign = await call(app, '/sso/touch/', { token: betaSecret, sso_session: sso })
  t.equal(foreign.statusCode, 404, 'a service the session never reached cannot keep it alive')
  t.equal((await call(app, '/sso/touch/', { token: secret, sso_session: 'sso_unknown' })).statusCode, 404)
  t.equal((await call(app, '/sso/touch/', { token: 'wrong', sso_session: sso })).statusCode, 401)

  await app.ssoGateway.revokeSession('alice', sso)
  const ended = await call(app, '/sso/touch/', { token: secret, sso_session: sso })
  t.equal(ended.statusCode, 404)
  t.same(ended.json(), { error: 'This SSO session has ended', code: 'FST_SSO_GATEWAY_UNKNOWN_SSO_SESSION' })
})

t.test('a user who lost access to the service no longer keeps the session alive through it', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  const token = await signIn(app, browser, secret)
  const sso = await ssoOf(app, secret, token)
  t.equal((await call(app, '/sso/touch/', { token: secret, sso_session: sso })).statusCode, 200)
  await app.ssoGateway.groups.create('staff')
  await app.ssoGateway.updateService('alpha', { access: { groups: ['staff'] } })
  t.equal((await call(app, '/sso/touch/', { token: secret, sso_session: sso })).statusCode, 404, 'refused: the service ends its session')
  await app.ssoGateway.deleteUser('alice')
  t.equal((await call(app, '/sso/touch/', { token: secret, sso_session: sso })).statusCode, 404, 'a deleted user: refused')
})
