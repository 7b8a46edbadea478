import t from 'tap'
import { Browser, buildApp, call, seed, signIn } from './helpers.js'

t.test('a service may only log out users who signed in through it', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const beta = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  agent.get('http://beta.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true }).persist()
  const browser = new Browser(app)
  await signIn(app, browser, secret)

  for (const user of ['alice', 'nobody', '!!!']) {
    const res = await call(app, '/sso/deauthenticate/', { token: beta.secret, user_identy: user })
    t.equal(res.statusCode, 404, `beta cannot log out ${user}`)
    t.same(res.json(), { error: 'This service has no signed-in user with that name', code: 'FST_SSO_GATEWAY_UNKNOWN_USER' })
  }
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'alice is still signed in')

  const ok = await call(app, '/sso/deauthenticate/', { token: secret, user_identy: 'ALICE' })
  t.same(ok.json(), { ok: true })
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/)

  const again = await call(app, '/sso/deauthenticate/', { token: secret, user_identy: 'alice' })
  t.equal(again.statusCode, 200, 'repeating it is harmless')
  t.same(again.json(), { ok: true })
})

t.test('deauthenticate tells every other enabled service', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test', eventUrl: 'http://beta.internal:9000/hooks/sso' })
  const bodies: unknown[] = []
  agent.get('http://beta.internal:9000').intercept({ path: '/hooks/sso', method: 'POST' })
    .reply(200, (opts) => { bodies.push(JSON.parse(String(opts.body))); return { ok: true } }).persist()
  await signIn(app, new Browser(app), secret)
  await call(app, '/sso/deauthenticate/', { token: secret, user_identy: 'alice' })
  await app.ssoGateway.events.flush()
  t.match(bodies, [{ type: 'deauthenticate', username: 'alice', user_id: /^usr_/, reason: 'logout_everywhere' }], 'delivered to the eventUrl')
  t.notOk('sso_session' in (bodies[0] as object), 'only user_identy: every session, everywhere (django-sso)')
})

t.test('a bad secret is a 401 JSON error, not a crash', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  for (const fields of [{ token: 'wrong', user_identy: 'alice' }, { user_identy: 'alice' }] as Array<Record<string, string>>) {
    const res = await call(app, '/sso/deauthenticate/', fields)
    t.equal(res.statusCode, 401)
    t.match(res.headers['content-type'], /application\/json/)
    t.same(res.json(), { error: 'Unknown or disabled service token', code: 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE' })
  }
})

t.test('a django-sso caller gets 200 {"ok": true} for a user it has no session of, as django-sso answers', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const legacy = await app.ssoGateway.registerService({ name: 'legacy', baseUrl: 'http://legacy.test', protocol: 'django-sso-1' })
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  for (const user of ['alice', 'nobody']) {
    const res = await call(app, '/sso/deauthenticate/', { token: legacy.secret, user_identy: user })
    t.same([res.statusCode, res.json()], [200, { ok: true }], `${user}: ok (a django-sso service skips its own logout on anything else)`)
  }
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'but nobody it never signed in is signed out by it')
})
