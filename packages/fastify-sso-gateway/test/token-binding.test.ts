import t from 'tap'
import { Browser, buildApp, call, seed, signIn } from './helpers.js'

for (const path of ['/sso/get/', '/sso/make_used/']) {
  t.test(`another service's ${path} fails and burns the token`, async (t) => {
    const { app, agent } = await buildApp()
    t.teardown(() => app.close())
    const { secret } = await seed(app, agent)
    const beta = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
    const token = await signIn(app, new Browser(app), secret)

    const stolen = await call(app, path, { token: beta.secret, authentication_token: token })
    t.equal(stolen.statusCode, 404)
    t.equal(stolen.json().code, 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN', 'the same answer as an unknown token')

    for (const p of ['/sso/get/', '/sso/make_used/']) {
      const owner = await call(app, p, { token: secret, authentication_token: token })
      t.equal(owner.statusCode, 404, `the rightful service cannot ${p} it any more`)
    }
  })
}

t.test('a pending token tried by another service is burnt too', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const beta = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  t.equal((await call(app, '/sso/make_used/', { token: beta.secret, authentication_token: token })).statusCode, 404)
  const form = await new Browser(app).request('GET', `/login/?sso=${token}`)
  t.equal(form.statusCode, 400, 'the sign-in link is dead')
  t.match(form.body, /no longer valid/)
})
