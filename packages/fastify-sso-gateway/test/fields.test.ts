import t from 'tap'
import { DEFAULT_FIELDS, RESERVED_FIELDS } from '../src/outbox/events.js'
import { Browser, buildApp, call, PASSWORD, record, signInAs } from './helpers.js'

async function setup () {
  const { app, agent } = await buildApp()
  const api = app.ssoGateway
  const alice = await api.createUser({
    username: 'alice', password: PASSWORD, email: 'alice@x.test', displayName: 'Alice A.', attributes: { department: 'sales', badge: 7, secret_note: 'x' }
  })
  await api.groups.create('staff')
  await api.groups.addMember('staff', 'alice')
  const alpha = await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const beta = await api.registerService({ name: 'beta', baseUrl: 'http://beta.test', fields: ['department', 'missing', 'department'] })
  const gamma = await api.registerService({ name: 'gamma', baseUrl: 'http://gamma.test', fields: [] })
  const events = { alpha: record(agent, 'http://alpha.test'), beta: record(agent, 'http://beta.test'), gamma: record(agent, 'http://gamma.test') }
  return { app, api, alice, alpha, beta, gamma, events }
}

const flags = { is_active: true, is_staff: false, is_superuser: false }

t.test('a custom attribute reaches only the services configured for it, in update_account', async (t) => {
  const { app, api, alice, beta, events } = await setup()
  t.teardown(() => app.close())
  t.same(beta.service.fields, ['department', 'missing'], 'duplicates dropped')
  await api.updateUser('alice', { attributes: { department: 'support', badge: 7, secret_note: 'x' } })
  await api.events.flush()
  const base = { type: 'update_account', user_id: alice.id, username: 'alice', ...flags, changed: ['attributes'] }
  t.same(events.alpha.at(-1), { ...base, email: 'alice@x.test', display_name: 'Alice A.', groups: ['staff'] }, 'default fields: no custom attribute')
  t.same(events.beta.at(-1), { ...base, department: 'support' }, 'beta: its attribute only; a missing one is left out')
  t.same(events.gamma.at(-1), base, 'gamma: no optional field at all')

  await api.updateUser('alice', { displayName: 'Alice B.', isStaff: true, email: 'new@x.test' })
  await api.events.flush()
  t.same(events.alpha.at(-1)?.changed, ['is_staff', 'email', 'display_name'], 'changed names are the wire names')
  t.match(events.alpha.at(-1), { display_name: 'Alice B.', email: 'new@x.test', is_staff: true })
  t.notOk('display_name' in events.beta.at(-1)!, 'beta never gets display_name')
})

t.test('a custom attribute reaches only the services configured for it, in /sso/get/', async (t) => {
  const { app, alice, alpha, beta, gamma, events } = await setup()
  t.teardown(() => app.close())
  const get = async (secret: string, token: string) => (await call(app, '/sso/get/', { token: secret, authentication_token: token })).json().user
  const a = await signInAs(app, new Browser(app), alpha.secret, 'alice')
  t.same(await get(alpha.secret, a.token), {
    user_id: alice.id, username: 'alice', ...flags, email: 'alice@x.test', display_name: 'Alice A.', groups: ['staff']
  })
  const b = await signInAs(app, new Browser(app), beta.secret, 'alice')
  t.same(await get(beta.secret, b.token), { user_id: alice.id, username: 'alice', ...flags, department: 'sales' })
  const g = await signInAs(app, new Browser(app), gamma.secret, 'alice')
  t.same(await get(gamma.secret, g.token), { user_id: alice.id, username: 'alice', ...flags })
  await app.ssoGateway.events.flush()
  t.same(events.beta.at(-1), { type: 'update_account', user_id: alice.id, username: 'alice', ...flags, department: 'sales' }, 'the sign-in event too')
})

t.test('field names: reserved names and bad lists are refused; the default set', async (t) => {
  const { app, api } = await setup()
  t.teardown(() => app.close())
  t.same(DEFAULT_FIELDS, ['email', 'display_name', 'groups'])
  t.equal((await api.getService('alpha'))!.fields, null, 'no fields given: the default set (null)')
  for (const name of RESERVED_FIELDS) {
    await t.rejects(api.registerService({ name: 'x', baseUrl: 'http://x.test', fields: [name] }),
      { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: new RegExp(`fields: ${name} is always sent and cannot be chosen`) }, name)
  }
  for (const bad of ['email', ['bad-name'], ['1st'], [''], [7], Array.from({ length: 101 }, (_, i) => `f${i}`), ['x'.repeat(65)]]) {
    await t.rejects(api.registerService({ name: 'x', baseUrl: 'http://x.test', fields: bad as never }),
      { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /fields must be a list of attribute names/ }, JSON.stringify(bad).slice(0, 40))
  }
  await t.rejects(api.updateService('beta', { fields: ['username'] }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  t.same((await api.updateService('beta', { fields: ['email', 'badge'] })).fields, ['email', 'badge'])
  t.equal((await api.updateService('beta', { fields: null })).fields, null, 'back to the default set')
  t.same((await api.registerService({ name: 'y', baseUrl: 'http://y.test', fields: null })).service.fields, null)
})
