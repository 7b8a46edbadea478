import t from 'tap'
import { verifyWebhook } from 'fastify-sso-protocol'
import { buildApp, PASSWORD } from './helpers.js'

const SIGNING = 'whsec_' + Buffer.alloc(32, 7).toString('base64')

t.test('registerService validates its input', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /name must be 1 to 100 characters/],
    [{ name: '   ', baseUrl: 'http://a.test' }, /name must be 1 to 100/],
    [{ name: 'x'.repeat(101), baseUrl: 'http://a.test' }, /name must be 1 to 100/],
    [{ name: 'a', baseUrl: 'not a url' }, /baseUrl must be an absolute http\(s\) URL/],
    [{ name: 'a', baseUrl: 'ftp://a.test' }, /baseUrl must be an http\(s\) URL without credentials/],
    [{ name: 'a', baseUrl: 'http://user@a.test' }, /without credentials/],
    [{ name: 'a', baseUrl: 'http://:pw@a.test' }, /without credentials/],
    [{ name: 'a', baseUrl: 'http://a.test/?q=1' }, /query/],
    [{ name: 'a', baseUrl: 'http://a.test/#f' }, /fragment/],
    [{ name: 'a', baseUrl: 'http://a.test', eventUrl: 'javascript:alert(1)' }, /eventUrl must be/],
    [{ name: 'a', baseUrl: 'http://a.test', protocol: 'saml' }, /protocol must be fastify-sso, django-sso-1 \(django-sso 1.x\) or django-sso-2/],
    [{ name: 'a', baseUrl: 'http://a.test', secret: 'short' }, /secret must be 32 to 256 characters/],
    [{ name: 'a', baseUrl: 'http://a.test', secret: 'x'.repeat(257) }, /secret must be 32 to 256/],
    [{ name: 'a', baseUrl: 'http://a.test', secret: 12345 }, /secret must be 32 to 256/],
    [{ name: 'a', baseUrl: 'http://a.test', signingSecret: 'whsec_short' }, /signingSecret must be whsec_/]
  ]
  for (const [input, message] of bad) {
    await t.rejects(api.registerService(input as never), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', statusCode: 400, message }, JSON.stringify(input))
  }
  t.same(await api.listServices(), [], 'nothing was registered')
})

t.test('registerService, getService, listServices, setServiceEnabled', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const a = await api.registerService({ name: ' shop ', baseUrl: 'https://shop.example/' })
  t.match(a.secret, /^[A-Za-z0-9_-]{43}$/)
  t.match(a.signingSecret, /^whsec_/)
  t.match(a.service, { name: 'shop', baseUrl: 'https://shop.example', eventUrl: 'https://shop.example/sso/event/', protocol: 'fastify-sso', enabled: true })
  t.notOk('tokenHash' in a.service || 'signingSecret' in a.service || 'djangoToken' in a.service, 'no secrets in the record')

  const secret = 's'.repeat(40)
  const b = await api.registerService({ name: 'legacy', baseUrl: 'http://legacy.test', eventUrl: 'http://10.0.0.2:8000/sso/event/', protocol: 'django-sso', secret, signingSecret: SIGNING })
  t.equal(b.secret, secret)
  t.equal(b.signingSecret, SIGNING)
  t.equal(b.service.eventUrl, 'http://10.0.0.2:8000/sso/event/', 'the event URL is kept as given (Django needs the slash)')
  t.equal(b.service.protocol, 'django-sso-1', "'django-sso' is the 1.x dialect")
  await t.rejects(api.registerService({ name: 'legacy-fields', baseUrl: 'http://legacy.test', protocol: 'django-sso-1', fields: ['email'] }),
    { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /a django-sso 1.x service refuses every key but username and the three flags/ })
  await t.rejects(api.updateService('legacy', { fields: ['email'] }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  t.same((await api.updateService('legacy', { fields: [] })).fields, [], 'no fields is fine for 1.x')
  const modern = await api.registerService({ name: 'django-3', baseUrl: 'http://dj3.test', protocol: 'django-sso-2', fields: ['email'] })
  t.match(modern.service, { protocol: 'django-sso-2', fields: ['email'] })

  await t.rejects(api.registerService({ name: 'shop', baseUrl: 'http://other.test' }), { code: 'FST_SSO_GATEWAY_SERVICE_EXISTS', statusCode: 409 })
  await t.rejects(api.registerService({ name: 'copy', baseUrl: 'http://other.test', secret }), { code: 'FST_SSO_GATEWAY_SERVICE_EXISTS' }, 'a secret in use is refused')

  t.match(await api.getService('shop'), { name: 'shop' })
  t.equal(await api.getService('nope'), null)
  t.same((await api.listServices()).map((s) => s.name), ['shop', 'legacy', 'django-3'])
  t.match(await api.setServiceEnabled('shop', false), { name: 'shop', enabled: false })
  t.match(await api.getService('shop'), { enabled: false })
  t.match(await api.setServiceEnabled('shop', true), { enabled: true })
  await t.rejects(api.setServiceEnabled('nope', true), { code: 'FST_SSO_GATEWAY_SERVICE_NOT_FOUND', statusCode: 404 })
})

t.test('createUser, getUser, updateUser, disableUser, logoutUser', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const alice = await api.createUser({ username: 'Alice', password: PASSWORD })
  t.match(alice, { username: 'alice', isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} })
  t.notOk('passwordHash' in alice)
  const bob = await api.createUser({ username: 'bob', isActive: false, isStaff: true, isSuperuser: true, email: 'b@x.test', displayName: 'Bob', attributes: { team: 'ops' } })
  t.match(bob, { isActive: false, isStaff: true, isSuperuser: true, email: 'b@x.test', displayName: 'Bob', attributes: { team: 'ops' } })

  await t.rejects(api.createUser({ username: 'ALICE', password: PASSWORD }), { code: 'FST_SSO_GATEWAY_USER_EXISTS', statusCode: 409 })
  await t.rejects(api.createUser({ username: 'ａｌｉｃｅ' }), { code: 'FST_SSO_GATEWAY_USER_EXISTS' }, 'full-width is the same name')
  for (const username of [undefined, '', 'a b', 'x'.repeat(151), 'x'.repeat(700), 'semi;colon', 42]) {
    await t.rejects(api.createUser({ username } as never), { code: 'FST_SSO_GATEWAY_INVALID_USERNAME', statusCode: 400 }, JSON.stringify(username))
  }
  await t.rejects(api.createUser(undefined as never), { code: 'FST_SSO_GATEWAY_INVALID_USERNAME' })
  for (const password of ['', 'x'.repeat(1025), 42]) {
    await t.rejects(api.createUser({ username: 'carol', password } as never), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD', statusCode: 400 })
  }
  t.equal(await api.getUser('carol'), null, 'nothing half-created')

  t.match(await api.getUser('ALICE'), { username: 'alice' })
  t.equal(await api.getUser('nobody'), null)
  t.equal(await api.getUser('not valid!'), null)

  const updated = await api.updateUser('alice', { email: 'a@x.test', displayName: 'Alice', isStaff: true, isSuperuser: true, attributes: { team: 'dev' }, password: 'a new passphrase' })
  t.match(updated, { email: 'a@x.test', displayName: 'Alice', isStaff: true, isSuperuser: true, attributes: { team: 'dev' } })
  t.ok(updated.updatedAt >= updated.createdAt)
  t.match(await api.updateUser('alice', {}), { email: 'a@x.test' }, 'an empty patch changes nothing')
  await t.rejects(api.updateUser('nobody', { email: null }), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND', statusCode: 404 })
  await t.rejects(api.updateUser('alice', { password: '' }), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD' })

  t.match(await api.disableUser('alice'), { isActive: false })
  t.match(await api.updateUser('alice', { isActive: true }), { isActive: true })
  t.equal(await api.logoutUser('alice'), 0, 'no sessions to end')
  await t.rejects(api.logoutUser('nobody'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
  await t.rejects(api.disableUser('nobody'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
})

t.test('updateUser pushes a signed update_account to every enabled service', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const modern = await api.registerService({ name: 'modern', baseUrl: 'http://modern.test' })
  const djangoSecret = 'd'.repeat(48)
  const legacy = await api.registerService({ name: 'legacy', baseUrl: 'http://legacy.test', protocol: 'django-sso', secret: djangoSecret })
  await api.registerService({ name: 'off', baseUrl: 'http://off.test' })
  await api.setServiceEnabled('off', false)
  await api.createUser({ username: 'alice', password: PASSWORD, attributes: { team: 'dev' } })

  const received = new Map<string, { headers: Record<string, string>, body: string }>()
  for (const origin of ['http://modern.test', 'http://legacy.test']) {
    agent.get(origin).intercept({ path: '/sso/event/', method: 'POST' }).reply(200, (opts) => {
      received.set(origin, { headers: opts.headers as Record<string, string>, body: String(opts.body) })
      return { ok: true }
    })
  }
  await api.updateUser('alice', { email: 'alice@example.test', isStaff: true })
  await api.events.flush()
  t.equal(received.size, 2, 'both enabled services, not the disabled one')

  const m = received.get('http://modern.test')!
  const body = JSON.parse(m.body)
  t.match(body.user_id, /^usr_/)
  t.same(body, {
    user_id: body.user_id, username: 'alice', is_active: true, is_staff: true, is_superuser: false, email: 'alice@example.test', display_name: null,
    groups: [], type: 'update_account', changed: ['is_staff', 'email']
  }, 'the default fields; the custom attribute team is not sent unless the service asks for it')
  t.notOk('token' in body, 'a fastify-sso service never gets its secret in the body')
  t.equal(m.headers['content-type'], 'application/json')
  t.match(m.headers['webhook-id'], /^evt_/)
  t.match(verifyWebhook({ secrets: [modern.signingSecret], headers: m.headers, body: m.body }), { ok: true, id: m.headers['webhook-id'] })
  t.match(verifyWebhook({ secrets: [legacy.signingSecret], headers: m.headers, body: m.body }), { ok: false, reason: 'bad-signature' }, 'each service has its own key')

  const l = received.get('http://legacy.test')!
  t.match(JSON.parse(l.body), { type: 'update_account', username: 'alice', token: djangoSecret }, 'django-sso services get their token in the body')
  t.match(verifyWebhook({ secrets: [legacy.signingSecret], headers: l.headers, body: l.body }), { ok: true })
  t.not(l.headers['webhook-id'], m.headers['webhook-id'])
})

t.test('disableUser signs the user out everywhere and tells services', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  await api.registerService({ name: 'modern', baseUrl: 'http://modern.test' })
  await api.createUser({ username: 'alice', password: PASSWORD })
  const types: string[] = []
  agent.get('http://modern.test').intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (opts) => { types.push(JSON.parse(String(opts.body)).type + ':' + JSON.parse(String(opts.body)).is_active); return { ok: true } }).persist()
  await api.disableUser('alice')
  await api.events.flush()
  t.same(types, ['update_account:false', 'deauthenticate:undefined'], 'in order: the account change, then the logout')
})

t.test('events: status, dead letters and replay through the decorator', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const { service } = await api.registerService({ name: 'gone', baseUrl: 'http://gone.test' })
  await api.createUser({ username: 'alice' })
  const pool = agent.get('http://gone.test')
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(410, '')
  await api.logoutUser('alice')
  await api.events.flush()
  const dead = await api.events.dead()
  t.match(dead, [{ serviceId: service.id, status: 'dead', lastError: 'HTTP 410', payload: /"deauthenticate"/ }])
  t.same(await api.events.dead(0), [])
  t.match(await api.events.status(), [{ serviceId: service.id, pending: 0, dead: 1 }])

  t.equal(await api.events.replay('evt_nope'), false)
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '')
  t.equal(await api.events.replay(dead[0]!.id), true)
  await api.events.flush()
  t.same(await api.events.dead(), [])
  t.same(await api.events.status(), [], 'delivered on replay')
})
