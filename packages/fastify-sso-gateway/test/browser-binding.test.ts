import t from 'tap'
import { Browser, buildApp, call, codes, obtain, PASSWORD, seed } from './helpers.js'

t.test('a request token finished in one browser cannot be redeemed without that browser\'s code', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)

  // The attacker starts a sign-in at the service and sends the gateway link to the victim,
  // who is signed in at the gateway: the silent sign-in authenticates the attacker's token.
  const victim = new Browser(app)
  const first = await obtain(app, secret)
  const form = await victim.request('GET', `/login/?sso=${first}`)
  await victim.request('POST', `/login/?sso=${first}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  const token = await obtain(app, secret)
  const silent = await victim.request('GET', `/login/?sso=${token}`)
  t.equal(silent.statusCode, 302)
  t.match(silent.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/\?code=[A-Za-z0-9_-]{43}$/, 'the code goes to the victim\'s browser only')

  // The attacker's service session holds the token but not the code.
  const noCode = await call(app, '/sso/get/', { token: secret, authentication_token: token, code: 'guessed-code' })
  t.equal(noCode.statusCode, 404, 'a wrong code: refused')
  const after = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(after.statusCode, 404, 'and the token is burnt: even the right code no longer works')
  const used = await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  t.equal(used.statusCode, 404)

  // Without any code at all.
  const other = await obtain(app, secret)
  await victim.request('GET', `/login/?sso=${other}`)
  const bare = await app.inject({
    method: 'POST', url: '/sso/make_used/', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: secret, authentication_token: other }).toString()
  })
  t.equal(bare.statusCode, 404, 'make_used without the code: refused')
  t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: other })).statusCode, 404, 'burnt')

  // The legitimate path: the service passes the code its accept URL carried.
  const fine = await obtain(app, secret)
  await victim.request('GET', `/login/?sso=${fine}`)
  t.ok(codes.has(fine))
  t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: fine })).statusCode, 200)
  t.equal((await call(app, '/sso/make_used/', { token: secret, authentication_token: fine })).statusCode, 200)
})
