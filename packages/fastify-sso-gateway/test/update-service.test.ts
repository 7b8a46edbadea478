import t from 'tap'
import { Browser, buildApp, obtain, PASSWORD, record, signInAs } from './helpers.js'

t.test('updateService changes every field, and the gateway uses the new values', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  await api.createUser({ username: 'alice', password: PASSWORD })
  await api.groups.create('staff')
  const { secret, service } = await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  t.match(service, { enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null, eventUrl: 'http://alpha.test/sso/event/' })

  const updated = await api.updateService('alpha', {
    baseUrl: 'https://new.alpha.test/app/',
    eventUrl: 'http://internal.alpha:8080/hooks/sso',
    requireFreshLogin: true,
    access: { users: ['alice'], groups: ['staff'] },
    fields: ['email'],
    displayName: '  Alpha Billing ',
    logoUrl: 'https://cdn.alpha.test/logo.svg'
  })
  const alice = await api.getUser('alice')
  t.same({ ...updated, createdAt: 0 }, {
    id: service.id,
    name: 'alpha',
    baseUrl: 'https://new.alpha.test/app',
    eventUrl: 'http://internal.alpha:8080/hooks/sso',
    protocol: 'fastify-sso',
    enabled: true,
    freshLogin: true,
    access: { users: [alice!.id], groups: ['staff'] },
    fields: ['email'],
    displayName: 'Alpha Billing',
    logoUrl: 'https://cdn.alpha.test/logo.svg',
    overlapUntil: null,
    createdAt: 0
  }, 'the base URL loses its trailing slash; the event URL is kept as given')
  t.same(await api.getService('alpha'), updated, 'stored')
  t.notOk('tokenHash' in updated || 'signingSecret' in updated, 'no secrets in the answer')
  t.same(await api.updateService('alpha', {}), updated, 'an empty patch changes nothing')

  const events = record(agent, 'http://internal.alpha:8080')
  agent.get('http://internal.alpha:8080').intercept({ path: '/hooks/sso', method: 'POST' })
    .reply(200, (opts) => { events.push(JSON.parse(String(opts.body))); return { ok: true } }).persist()
  const { res } = await signInAs(app, new Browser(app), secret, 'alice')
  t.match(res.headers.location, /^https:\/\/new\.alpha\.test\/app\/sso\/accept\/(\?code=[\w-]{43})?$/, 'the browser goes to the new base URL')
  await api.events.flush()
  t.match(events, [{ type: 'update_account', username: 'alice' }], 'events go to the new event URL')
  t.notOk('groups' in events[0]!, 'with the new fields')

  t.match(await api.setServiceEnabled('alpha', false), { enabled: false })
  t.equal((await app.inject({ method: 'POST', url: '/sso/obtain/', payload: { token: secret, next_url: '/' } })).statusCode, 401, 'disabled: refused')
  t.match(await api.updateService('alpha', { enabled: true, requireFreshLogin: false }), { enabled: true, freshLogin: false })
  t.ok(await obtain(app, secret), 'enabled again')
  t.match(await api.setServiceEnabled('alpha', 'yes' as never), { enabled: false }, 'only true enables')
})

t.test('updateService refuses an unknown service and bad values', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await t.rejects(api.updateService('nope', { enabled: false }), { code: 'FST_SSO_GATEWAY_SERVICE_NOT_FOUND', statusCode: 404, message: /No service nope/ })
  await t.rejects(api.setServiceEnabled('nope', true), { code: 'FST_SSO_GATEWAY_SERVICE_NOT_FOUND' })
  await t.rejects(api.updateService('alpha', { baseUrl: 'ftp://alpha.test' }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /baseUrl/ })
  await t.rejects(api.updateService('alpha', { baseUrl: 'not a url' }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /baseUrl must be an absolute/ })
  await t.rejects(api.updateService('alpha', { eventUrl: 'http://x.test/?q=1' }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /eventUrl/ })
  await t.rejects(api.updateService('alpha', { fields: 'email' as never }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  await t.rejects(api.updateService('alpha', { access: { groups: ['ghosts'] } }), { code: 'FST_SSO_GATEWAY_INVALID_GROUP' })
  for (const displayName of ['', '   ', 'x'.repeat(101), 42]) {
    await t.rejects(api.updateService('alpha', { displayName: displayName as never }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /displayName must be 1 to 100/ })
  }
  for (const logoUrl of ['', 'javascript:alert(1)', 'ftp://x.test/l.png', '//evil.test/l.png', 'logo.png', 'https://u:p@x.test/l.png',
    '/a b.png', '/a"onload=x.png', 'x'.repeat(2049), 7]) {
    await t.rejects(api.updateService('alpha', { logoUrl: logoUrl as never }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /logoUrl must be/ }, String(logoUrl).slice(0, 30))
  }
  t.match(await api.getService('alpha'), { baseUrl: 'http://alpha.test', access: null, fields: null, displayName: null, logoUrl: null }, 'nothing changed')
})

t.test('display name and logo: given at registration, changed and cleared later', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const { service } = await api.registerService({ name: 'beta', baseUrl: 'http://beta.test', displayName: 'Beta Docs', logoUrl: '/static/beta.png' })
  t.match(service, { name: 'beta', displayName: 'Beta Docs', logoUrl: '/static/beta.png' })
  await t.rejects(api.registerService({ name: 'gamma', baseUrl: 'http://gamma.test', displayName: 'y'.repeat(101) }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /displayName/ })
  await t.rejects(api.registerService({ name: 'gamma', baseUrl: 'http://gamma.test', logoUrl: 'data:image/png;base64,AAAA' }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /logoUrl/ })
  t.equal(await api.getService('gamma'), null, 'nothing registered')
  t.match(await api.updateService('beta', { logoUrl: 'http://cdn.test/b.png' }), { displayName: 'Beta Docs', logoUrl: 'http://cdn.test/b.png' })
  t.match(await api.updateService('beta', { displayName: null, logoUrl: null }), { displayName: null, logoUrl: null }, 'cleared with null')
  t.match(await api.listServices(), [{ name: 'beta', displayName: null, logoUrl: null }])
})
