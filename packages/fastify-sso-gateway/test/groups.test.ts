import t from 'tap'
import { buildApp, PASSWORD, record } from './helpers.js'

t.test('groups: create, list, members, delete', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const { groups } = app.ssoGateway
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  await app.ssoGateway.createUser({ username: 'bob', password: PASSWORD })
  t.same(await groups.list(), [])
  await groups.create('staff')
  await groups.create('ops')
  await groups.create('staff')
  t.same(await groups.list(), ['ops', 'staff'], 'sorted; creating twice is harmless')

  await groups.addMember('staff', 'bob')
  await groups.addMember('staff', 'Alice')
  await groups.addMember('staff', 'alice')
  await groups.addMember('ops', 'alice')
  t.same((await groups.members('staff')).map((u) => u.username), ['alice', 'bob'], 'members, by username')
  t.notOk('passwordHash' in (await groups.members('staff'))[0]!, 'no password hash in the answer')
  t.same(await groups.of('alice'), ['ops', 'staff'])
  await groups.removeMember('staff', 'alice')
  await groups.removeMember('staff', 'alice')
  t.same(await groups.of('alice'), ['ops'], 'removing twice is harmless')

  t.equal(await groups.delete('ops'), true)
  t.equal(await groups.delete('ops'), false, 'already gone')
  t.same(await groups.of('alice'), [], 'memberships go with the group')
  t.same(await groups.members('ops'), [])
  t.same(await groups.list(), ['staff'])
})

t.test('groups: bad names, unknown groups and users', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const { groups } = app.ssoGateway
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  for (const bad of ['', 'x'.repeat(101), 42 as never, undefined as never]) {
    await t.rejects(groups.create(bad), { code: 'FST_SSO_GATEWAY_INVALID_GROUP', statusCode: 400 }, `create(${JSON.stringify(bad)})`)
  }
  await t.rejects(groups.delete(''), { code: 'FST_SSO_GATEWAY_INVALID_GROUP' })
  await t.rejects(groups.members(''), { code: 'FST_SSO_GATEWAY_INVALID_GROUP' })
  await t.rejects(groups.addMember('ghosts', 'alice'), { code: 'FST_SSO_GATEWAY_INVALID_GROUP', message: /"ghosts"/ }, 'an unknown group')
  await t.rejects(groups.removeMember('', 'alice'), { code: 'FST_SSO_GATEWAY_INVALID_GROUP' })
  await groups.create('staff')
  await t.rejects(groups.addMember('staff', 'nobody'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
  await t.rejects(groups.of('nobody'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
  t.equal((await groups.create('x'.repeat(100)), (await groups.list()).includes('x'.repeat(100))), true, '100 characters is fine')
})

t.test('membership changes reach the services that receive groups, as update_account', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  const alice = await api.createUser({ username: 'alice', password: PASSWORD, email: 'a@x.test' })
  await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await api.registerService({ name: 'beta', baseUrl: 'http://beta.test', fields: ['email'] })
  await api.registerService({ name: 'gamma', baseUrl: 'http://gamma.test', fields: ['groups'] })
  await api.registerService({ name: 'delta', baseUrl: 'http://delta.test' })
  await api.setServiceEnabled('delta', false)
  const alpha = record(agent, 'http://alpha.test')
  const beta = record(agent, 'http://beta.test')
  const gamma = record(agent, 'http://gamma.test')
  const delta = record(agent, 'http://delta.test')
  await api.groups.create('staff')
  await api.groups.addMember('staff', 'alice')
  await api.events.flush()
  const base = { type: 'update_account', user_id: alice.id, username: 'alice', is_active: true, is_staff: false, is_superuser: false }
  t.same(alpha, [{ ...base, email: 'a@x.test', display_name: null, groups: ['staff'], changed: ['groups'] }], 'default fields include groups')
  t.same(gamma, [{ ...base, groups: ['staff'], changed: ['groups'] }], 'only the fields gamma is configured for')
  t.same(beta, [], 'beta does not receive groups: not told')
  t.same(delta, [], 'a disabled service is not told')

  await api.groups.removeMember('staff', 'alice')
  await api.events.flush()
  t.same(gamma[1], { ...base, groups: [], changed: ['groups'] }, 'removal: the new (empty) groups')
  t.equal(alpha.length, 2)
  t.same(beta, [])
})
