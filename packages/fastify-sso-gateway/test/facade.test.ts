import t from 'tap'
import { buildApp } from './helpers.js'

t.test('app.ssoGateway is a frozen object with exactly the typed API', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  t.ok(Object.isFrozen(api), 'frozen')
  t.ok(Object.isFrozen(api.groups) && Object.isFrozen(api.events), 'and so are its groups and events')
  t.same(Object.keys(api).sort(), [
    'auditLog', 'changePassword', 'createUser', 'deleteUser', 'disableUser', 'events', 'getService', 'getUser', 'groups', 'listServices',
    'listSessions', 'listUsers', 'logoutUser', 'registerService', 'renameUser', 'revokeOtherSessions', 'revokeSession', 'rotateSecrets',
    'setServiceEnabled', 'updateService', 'updateUser'
  ], 'the methods of SsoGatewayApi, nothing else')
  t.same(Object.keys(api.groups).sort(), ['addMember', 'create', 'delete', 'list', 'members', 'of', 'removeMember'])
  t.same(Object.keys(api.events).sort(), ['dead', 'flush', 'replay', 'status'])
  for (const internal of ['store', 'userByName', 'verifyPassword', 'serviceBySecret', 'mayUse', 'rehashPassword', 'endSsoSession', 'audit', 'lastDeliveryError']) {
    t.notOk(internal in api, `${internal} is not reachable`)
  }
  t.equal(Object.getPrototypeOf(api), Object.prototype, 'a plain object: no class methods behind it')
  t.throws(() => { (api as unknown as Record<string, unknown>).createUser = null }, TypeError, 'cannot be changed')

  await api.createUser({ username: 'alice', password: 'a long enough password' })
  t.notOk('passwordHash' in (await api.getUser('alice') ?? {}), 'users come without their password hash')
  await api.groups.create('staff')
  await api.groups.addMember('staff', 'alice')
  t.same(await api.groups.of('alice'), ['staff'])
  await api.groups.removeMember('staff', 'alice')
  t.same(await api.groups.members('staff'), [])
  t.same(await api.events.dead(), [])
  t.same((await api.listUsers()).map((u) => u.username), ['alice'])
  t.notOk('passwordHash' in ((await api.listUsers())[0] ?? {}), 'listed without the password hash')
  await api.deleteUser('alice')
  t.equal(await api.getUser('alice'), null)
})

t.test('the test-only helper refuses an object that is not a decorator', async (t) => {
  const { gatewayBehind } = await import('../src/facade.js')
  t.throws(() => gatewayBehind({} as never), { message: 'not a fastify-sso-gateway decorator' })
})
