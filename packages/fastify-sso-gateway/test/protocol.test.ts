import t from 'tap'
import { buildApp, call, seed, signIn, Browser, codes } from './helpers.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const JSON_CT = { 'content-type': 'application/json' }

t.test('protocol endpoints answer with and without the trailing slash, form and JSON bodies', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)

  for (const path of ['/sso/obtain/', '/sso/obtain']) {
    const form = await call(app, path, { token: secret, next_url: '/a' })
    t.equal(form.statusCode, 200, `${path} form`)
    t.match(form.json(), { token: /^[A-Za-z0-9_-]{43}$/ })
    const json = await app.inject({ method: 'POST', url: path, headers: JSON_CT, payload: { token: secret, next_url: '/b' } })
    t.equal(json.statusCode, 200, `${path} JSON`)
    t.equal(json.headers['content-type'], 'application/json; charset=utf-8')
  }

  // get / make_used / deauthenticate, JSON with the secret in X-Token, without the slash
  const browser = new Browser(app)
  const token = await signIn(app, browser, secret, '/here')
  const got = await app.inject({ method: 'POST', url: '/sso/get', headers: { ...JSON_CT, 'x-token': secret }, payload: { authentication_token: token, code: codes.get(token) } })
  t.equal(got.statusCode, 200)
  t.match(got.json(), { authenticated: true, user_identy: 'alice', next_url: '/here', sso_session: /^sso_/ })
  const used = await app.inject({ method: 'POST', url: '/sso/make_used', headers: { ...JSON_CT, 'x-token': secret }, payload: { authentication_token: token, code: codes.get(token) } })
  t.same(used.json(), { ok: true })
  const deauth = await app.inject({ method: 'POST', url: '/sso/deauthenticate', headers: { ...JSON_CT, 'x-token': secret }, payload: { user_identy: 'alice' } })
  t.same(deauth.json(), { ok: true })
})

t.test('the service secret: X-Token or token field, never the query string, never two different ones', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const obtain = async (headers: Record<string, string>, fields: Record<string, string>, url = '/sso/obtain/') =>
    await app.inject({ method: 'POST', url, headers: { ...FORM, ...headers }, payload: new URLSearchParams(fields).toString() })

  t.equal((await obtain({ 'x-token': secret }, { next_url: '/x' })).statusCode, 200, 'header only')
  t.equal((await obtain({}, { token: secret, next_url: '/x' })).statusCode, 200, 'field only')
  t.equal((await obtain({ 'x-token': secret }, { token: secret, next_url: '/x' })).statusCode, 200, 'both, equal')

  const conflict = await obtain({ 'x-token': secret }, { token: secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A'), next_url: '/x' })
  t.equal(conflict.statusCode, 400)
  t.same(conflict.json(), { error: 'Conflicting service tokens in the X-Token header and the token field', code: 'FST_SSO_GATEWAY_CONFLICTING_TOKEN' })

  for (const payload of [`token=${secret}&token=other&next_url=/x`, `token=${secret}&token=${secret}&next_url=/x`]) {
    const repeated = await app.inject({ method: 'POST', url: '/sso/obtain/', headers: FORM, payload })
    t.equal(repeated.statusCode, 401, 'a repeated token field is refused')
    t.equal(repeated.json().code, 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE')
  }

  const query = await obtain({}, { next_url: '/x' }, `/sso/obtain/?token=${secret}`)
  t.equal(query.statusCode, 401, 'a secret in the query string is ignored')

  const missing = await obtain({}, { next_url: '/x' })
  const wrong = await obtain({}, { token: 'not-the-secret', next_url: '/x' })
  const tooLong = await obtain({ 'x-token': 'x'.repeat(300) }, { next_url: '/x' })
  await app.ssoGateway.setServiceEnabled('alpha', false)
  const disabled = await obtain({}, { token: secret, next_url: '/x' })
  for (const [name, res] of Object.entries({ missing, wrong, tooLong, disabled })) {
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), { error: 'Unknown or disabled service token', code: 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE' }, `${name}: same body`)
  }
  await app.ssoGateway.setServiceEnabled('alpha', true)
  t.equal((await obtain({}, { token: secret, next_url: '/x' })).statusCode, 200, 're-enabled')
})

t.test('bad input gets a clear 4xx JSON error, never a 500', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const send = async (url: string, headers: Record<string, string>, payload: string) =>
    await app.inject({ method: 'POST', url, headers, payload })

  const plain = await send('/sso/obtain/', { 'content-type': 'text/plain' }, `token=${secret}&next_url=/x`)
  t.equal(plain.statusCode, 415, 'text/plain is not a protocol body')
  t.equal(plain.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
  t.equal((await send('/sso/obtain/', { 'content-type': 'application/xml' }, '<a/>')).statusCode, 415)

  const big = await send('/sso/obtain/', JSON_CT, JSON.stringify({ token: secret, next_url: '/' + 'a'.repeat(9000) }))
  t.equal(big.statusCode, 413)
  t.match(big.json(), { error: /too large/, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })

  const cases: Array<[string, string, Record<string, string>, string]> = [
    ['extra JSON field', '/sso/obtain/', JSON_CT, JSON.stringify({ token: secret, next_url: '/x', admin: true })],
    ['extra form field', '/sso/obtain/', FORM, `token=${secret}&next_url=/x&admin=1`],
    ['number instead of string', '/sso/obtain/', JSON_CT, JSON.stringify({ token: secret, next_url: 123 })],
    ['array instead of string', '/sso/obtain/', JSON_CT, JSON.stringify({ token: secret, next_url: ['/x'] })],
    ['object instead of string', '/sso/get/', JSON_CT, JSON.stringify({ token: secret, authentication_token: { $ne: null } })],
    ['missing field', '/sso/make_used/', JSON_CT, JSON.stringify({ token: secret })],
    ['repeated field', '/sso/deauthenticate/', FORM, `token=${secret}&user_identy=a&user_identy=b`],
    ['a JSON array', '/sso/get/', { ...JSON_CT, 'x-token': secret }, '[1,2]'],
    ['a JSON string', '/sso/get/', { ...JSON_CT, 'x-token': secret }, '"x"'],
    ['no body', '/sso/get/', { 'x-token': secret }, ''],
    ['overlong user_identy', '/sso/deauthenticate/', JSON_CT, JSON.stringify({ token: secret, user_identy: 'a'.repeat(151) })]
  ]
  for (const [name, url, headers, payload] of cases) {
    const res = await send(url, headers, payload)
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'FST_ERR_VALIDATION', name)
    t.match(res.json().error, /^Invalid request: /, name)
    t.notMatch(res.body, /at \w+ \(|node_modules/, `${name}: no stack trace`)
  }

  const broken = await send('/sso/obtain/', JSON_CT, '{"token": ')
  t.equal(broken.statusCode, 400, 'malformed JSON')
  t.equal(broken.json().code, 'FST_ERR_CTP_INVALID_JSON_BODY')
})

t.test('an unknown caller gets the same 401 whatever its body', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const cases: Array<[string, string]> = [
    ['/sso/obtain/', 'token=nope&next_url=/x&authentication_token=x&user_identy=alice'],
    ['/sso/get/', 'token=nope'],
    ['/sso/make_used/', 'token=nope&extra=1'],
    ['/sso/deauthenticate/', '']
  ]
  for (const [url, payload] of cases) {
    const res = await app.inject({ method: 'POST', url, headers: FORM, payload })
    t.equal(res.statusCode, 401, url)
    t.same(res.json(), { error: 'Unknown or disabled service token', code: 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE' })
  }
})

t.test('prototype-poisoning keys are refused', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  for (const payload of [
    `{"token":"${secret}","next_url":"/x","__proto__":{"isAdmin":true}}`,
    `{"token":"${secret}","next_url":"/x","constructor":{"prototype":{"isAdmin":true}}}`
  ]) {
    const res = await app.inject({ method: 'POST', url: '/sso/obtain/', headers: JSON_CT, payload })
    t.equal(res.statusCode, 400)
    t.type(res.json().error, 'string')
  }
  const form = await app.inject({ method: 'POST', url: '/sso/obtain/', headers: FORM, payload: `token=${secret}&next_url=/x&__proto__=1` })
  t.equal(form.statusCode, 400, 'form-encoded __proto__ is an extra field')
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched')
})

t.test('unknown routes, even under /sso/, are the host app\'s (Fastify\'s JSON 404 by default)', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/sso/nothing/' })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { error: 'Not Found', message: 'Route POST:/sso/nothing/ not found' })
})

t.test('get and make_used before sign-in: pending, and the token stays usable', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const early = await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  t.equal(early.statusCode, 409)
  t.equal(early.json().code, 'FST_SSO_GATEWAY_PENDING')
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const ok = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: 'correct horse battery staple', _csrf: Browser.csrf(form.body) })
  t.equal(ok.statusCode, 303, 'still usable after the early calls')
  t.equal((await call(app, '/sso/make_used/', { token: secret, authentication_token: token })).statusCode, 200)
})

t.test('get for a user disabled after signing in fails', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = await signIn(app, new Browser(app), secret)
  await app.ssoGateway.disableUser('alice')
  const got = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(got.statusCode, 404)
  t.equal(got.json().code, 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN')
})
