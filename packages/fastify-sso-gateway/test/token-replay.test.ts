import t from 'tap'
import { Browser, buildApp, call, seed, signIn } from './helpers.js'

t.test('a redeemed request token can never be read or redeemed again', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = await signIn(app, new Browser(app), secret)
  t.same((await call(app, '/sso/make_used/', { token: secret, authentication_token: token })).json(), { ok: true })
  for (const path of ['/sso/make_used/', '/sso/get/']) {
    const replay = await call(app, path, { token: secret, authentication_token: token })
    t.equal(replay.statusCode, 404, `${path} after make_used`)
    t.same(replay.json(), { error: 'Unknown, expired or already used authentication token', code: 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN' })
  }
})

t.test('50 concurrent make_used calls: exactly one wins', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = await signIn(app, new Browser(app), secret)
  const results = await Promise.all(Array.from({ length: 50 }, async () =>
    await call(app, '/sso/make_used/', { token: secret, authentication_token: token })))
  const codes = results.map((r) => r.statusCode)
  t.equal(codes.filter((c) => c === 200).length, 1, 'one 200')
  t.equal(codes.filter((c) => c === 404).length, 49, 'every other call is refused')
})

t.test('an unknown token is refused like a used one', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const res = await call(app, '/sso/make_used/', { token: secret, authentication_token: 'never-issued' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN')
})
