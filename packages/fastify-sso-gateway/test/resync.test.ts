import t from 'tap'
import { Browser, buildApp, call, PASSWORD, record, signInAs } from './helpers.js'

async function setup () {
  const { app, agent } = await buildApp()
  const api = app.ssoGateway
  const alpha = await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test', fields: ['email', 'team'] })
  const beta = await api.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  record(agent, 'http://alpha.test')
  record(agent, 'http://beta.test')
  const users: Record<string, string> = {}
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    users[name] = (await api.createUser({ username: name, password: PASSWORD, email: `${name}@x.test`, attributes: { team: name.toUpperCase() } })).id
  }
  for (const name of ['alice', 'bob', 'carol']) await signInAs(app, new Browser(app), alpha.secret, name)
  await signInAs(app, new Browser(app), beta.secret, 'dave')
  return { app, api, alpha, beta, users }
}

interface Page { accounts: Array<Record<string, unknown>>, next_cursor: string | null }
const page = async (app: Awaited<ReturnType<typeof setup>>['app'], fields: Record<string, string>, path = '/sso/accounts/') => {
  const res = await call(app, path, fields)
  return { status: res.statusCode, body: res.json() as Page }
}

t.test('resync pages through the accounts a service knows, with cursor and limit', async (t) => {
  const { app, alpha, users } = await setup()
  t.teardown(() => app.close())
  const ids = ['alice', 'bob', 'carol'].map((n) => users[n]!).sort()
  const first = await page(app, { token: alpha.secret, limit: '2' })
  t.equal(first.status, 200)
  t.same(first.body.accounts.map((a) => a.user_id), ids.slice(0, 2), 'by user id')
  t.equal(first.body.next_cursor, ids[1])
  const second = await page(app, { token: alpha.secret, limit: '2', cursor: first.body.next_cursor! })
  t.same(second.body.accounts.map((a) => a.user_id), ids.slice(2))
  t.equal(second.body.next_cursor, null, 'the last page')
  const all = await page(app, { token: alpha.secret }, '/sso/accounts')
  t.equal(all.body.accounts.length, 3, 'the default limit takes all; the path works without the slash')
  t.notOk(all.body.accounts.some((a) => a.username === 'dave'), 'another service\'s user is not listed')
  t.same(all.body.accounts.find((a) => a.username === 'alice'), {
    user_id: users.alice, username: 'alice', is_active: true, is_staff: false, is_superuser: false, email: 'alice@x.test', team: 'ALICE'
  }, 'the fields this service is configured for')
  const exact = await page(app, { token: alpha.secret, limit: '3' })
  t.equal(exact.body.next_cursor, ids[2], 'a full page points on')
  t.same((await page(app, { token: alpha.secret, limit: '3', cursor: ids[2]! })).body, { accounts: [], next_cursor: null })
  t.equal((await page(app, { token: alpha.secret, limit: '0' })).body.accounts.length, 1, 'a limit below 1 is 1')
  t.equal((await page(app, { token: alpha.secret, limit: '9999' })).body.accounts.length, 3, 'a large limit is capped (at 500)')
})

t.test('deleted users are listed as deleted, with the last username the service saw', async (t) => {
  const { app, api, alpha, beta, users } = await setup()
  t.teardown(() => app.close())
  await api.deleteUser('bob')
  await api.renameUser('carol', 'caroline')
  await api.deleteUser('caroline')
  const { body } = await page(app, { token: alpha.secret })
  const byId = new Map(body.accounts.map((a) => [a.user_id, a]))
  t.same(byId.get(users.bob), { user_id: users.bob, username: 'bob', deleted: true })
  t.same(byId.get(users.carol), { user_id: users.carol, username: 'caroline', deleted: true }, 'the name after the rename it was told about')
  t.match(byId.get(users.alice), { username: 'alice', is_active: true })
  t.same((await page(app, { token: beta.secret })).body.accounts.map((a) => a.username), ['dave'])
})

t.test('resync is authenticated by the service secret and validates its input', async (t) => {
  const { app, alpha } = await setup()
  t.teardown(() => app.close())
  const bad = await call(app, '/sso/accounts/', { token: 'not-the-secret' })
  t.equal(bad.statusCode, 401)
  t.equal(bad.json().code, 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE')
  t.equal((await call(app, '/sso/accounts/', {})).statusCode, 401, 'no token')
  t.equal((await call(app, '/sso/accounts/', { token: alpha.secret, limit: 'ten' })).statusCode, 400)
  t.equal((await call(app, '/sso/accounts/', { token: alpha.secret, other: 'x' })).statusCode, 400)
  const json = await app.inject({ method: 'POST', url: '/sso/accounts/', headers: { 'x-token': alpha.secret }, payload: { limit: '1' } })
  t.equal(json.statusCode, 200, 'JSON and the X-Token header work too')
  t.equal(json.json().accounts.length, 1)
  await app.ssoGateway.setServiceEnabled('alpha', false)
  t.equal((await call(app, '/sso/accounts/', { token: alpha.secret })).statusCode, 401, 'a disabled service is refused')
})
