import t from 'tap'
import { Browser, buildApp, call, PASSWORD, record, signInAs, ssoOf } from './helpers.js'

async function setup () {
  const { app, agent } = await buildApp()
  const api = app.ssoGateway
  const alice = await api.createUser({ username: 'alice', password: PASSWORD })
  await api.createUser({ username: 'bob', password: PASSWORD })
  const alpha = await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const beta = await api.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  await api.registerService({ name: 'gamma', baseUrl: 'http://gamma.test' })
  await api.setServiceEnabled('gamma', false)
  const events = { alpha: record(agent, 'http://alpha.test'), beta: record(agent, 'http://beta.test'), gamma: record(agent, 'http://gamma.test') }
  return { app, api, alice, alpha, beta, events }
}

const signedInAs = async (browser: Browser): Promise<string | null> =>
  /<strong id="who">([^<]+)/.exec((await browser.request('GET', '/welcome/')).body)?.[1] ?? null

t.test('rename: rename_account with the old name and the same id; the old name no longer signs in', async (t) => {
  const { app, api, alice, alpha, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  await api.events.flush()
  events.alpha.length = 0

  const renamed = await api.renameUser('ALICE', 'Alicia')
  t.match(renamed, { id: alice.id, username: 'alicia' }, 'canonical new name, same id')
  await api.events.flush()
  const rename = { type: 'rename_account', user_id: alice.id, username: 'alicia', old_username: 'alice' }
  t.same(events.alpha, [rename], 'only rename_account: nothing else changed')
  t.same(events.beta, [rename], 'every enabled service, signed in there or not')
  t.same(events.gamma, [], 'not a disabled one')
  t.equal(await signedInAs(browser), 'alicia', 'the open session follows the rename')
  t.equal(await api.getUser('alice'), null)

  const old = await signInAs(app, new Browser(app), alpha.secret, 'alice')
  t.equal(old.res.statusCode, 401, 'the old name no longer signs in')
  const fresh = await signInAs(app, new Browser(app), alpha.secret, 'alicia')
  t.equal(fresh.res.statusCode, 303)
  t.match((await call(app, '/sso/get/', { token: alpha.secret, authentication_token: fresh.token })).json(),
    { user_identy: 'alicia', user: { user_id: alice.id, username: 'alicia' } })

  t.same(await api.renameUser('alicia', 'ALICIA'), renamed.username === 'alicia' ? { ...(await api.getUser('alicia'))! } : null, 'the same name: nothing to do')
  await api.events.flush()
  t.equal(events.beta.length, 1, 'and no event')
  await t.rejects(api.renameUser('alicia', 'Bob'), { code: 'FST_SSO_GATEWAY_USER_EXISTS', statusCode: 409 }, 'a taken name')
  await t.rejects(api.renameUser('alicia', 'no spaces'), { code: 'FST_SSO_GATEWAY_INVALID_USERNAME', statusCode: 400 })
  await t.rejects(api.renameUser('alicia', ''), { code: 'FST_SSO_GATEWAY_INVALID_USERNAME' })
  await t.rejects(api.renameUser('nobody', 'x'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
  await api.events.flush()
  t.equal(events.beta.length, 1, 'refused renames send nothing')
  t.match(await api.getUser('alicia'), { id: alice.id })
})

t.test('delete: deauthenticate (reason deleted) and delete_account to every enabled service; the user is gone', async (t) => {
  const { app, api, alice, alpha, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  await api.groups.create('staff')
  await api.groups.addMember('staff', 'alice')
  await api.events.flush()
  events.alpha.length = 0
  events.beta.length = 0

  await api.deleteUser('Alice')
  await api.events.flush()
  const expected = [
    // issued_at: when the gateway issued it, so services keep sessions signed in after it.
    { type: 'deauthenticate', username: 'alice', user_id: alice.id, reason: 'deleted', issued_at: (events.alpha[0] as { issued_at: number }).issued_at },
    { type: 'delete_account', user_id: alice.id, username: 'alice' }
  ]
  t.ok(Number.isSafeInteger(expected[0]?.issued_at))
  t.same(events.alpha, expected)
  t.same(events.beta, [{ ...expected[0], issued_at: (events.beta[0] as { issued_at: number }).issued_at }, expected[1]])
  t.same(events.gamma, [])
  t.equal(await api.getUser('alice'), null, 'gone')
  t.same((await api.groups.members('staff')), [], 'memberships gone')
  t.equal(await signedInAs(browser), null, 'the open session ended')
  t.equal((await signInAs(app, new Browser(app), alpha.secret, 'alice')).res.statusCode, 401, 'cannot sign in')
  const deauth = await call(app, '/sso/deauthenticate/', { token: alpha.secret, user_identy: 'alice' })
  t.equal(deauth.statusCode, 404, 'the service cannot log out a deleted user')
  await t.rejects(api.deleteUser('alice'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
  // The name is free again, with a new id.
  const again = await api.createUser({ username: 'alice', password: PASSWORD })
  t.not(again.id, alice.id)
})

t.test('disable: update_account with is_active false, then deauthenticate (reason disabled)', async (t) => {
  const { app, api, alice, alpha, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  await api.events.flush()
  events.alpha.length = 0
  await api.disableUser('alice')
  await api.events.flush()
  t.match(events.alpha, [
    { type: 'update_account', user_id: alice.id, is_active: false, changed: ['is_active'] },
    { type: 'deauthenticate', user_id: alice.id, reason: 'disabled' }
  ])
  t.equal(await signedInAs(browser), null)
})

t.test('changePassword: endSessions none, others (keeping one), all', async (t) => {
  const { app, api, alpha, events } = await setup()
  t.teardown(() => app.close())
  const laptop = new Browser(app)
  const phone = new Browser(app)
  const tablet = new Browser(app)
  const laptopSso = await ssoOf(app, alpha.secret, (await signInAs(app, laptop, alpha.secret, 'alice')).token)
  const phoneSso = await ssoOf(app, alpha.secret, (await signInAs(app, phone, alpha.secret, 'alice')).token)
  await signInAs(app, tablet, alpha.secret, 'alice')
  await api.events.flush()
  events.alpha.length = 0

  t.equal(await api.changePassword('alice', 'second password', { endSessions: 'none' }), 0)
  t.equal(await signedInAs(laptop), 'alice')
  t.equal(await signedInAs(phone), 'alice')
  t.equal((await signInAs(app, new Browser(app), alpha.secret, 'alice')).res.statusCode, 401, 'the old password no longer works')
  t.equal((await signInAs(app, new Browser(app), alpha.secret, 'alice', 'second password')).res.statusCode, 303, 'the new one does')
  await api.events.flush()
  t.same(events.alpha.filter((e) => e.type === 'deauthenticate'), [], 'nobody signed out')
  t.notOk(events.alpha.some((e) => e.changed !== undefined), 'a password is no account data: no update event')

  // others: every SSO session but the one kept (the default)
  t.equal(await api.changePassword('alice', 'third passphrase', { keepSsoSession: laptopSso }), 3)
  t.equal(await signedInAs(laptop), 'alice', 'the kept session stays')
  t.equal(await signedInAs(phone), null)
  t.equal(await signedInAs(tablet), null)
  await api.events.flush()
  const deauths = events.alpha.filter((e) => e.type === 'deauthenticate')
  t.equal(deauths.length, 3, 'one per SSO session that reached alpha')
  t.ok(deauths.every((e) => e.reason === 'password_changed' && e.sso_session !== laptopSso))
  t.ok(deauths.some((e) => e.sso_session === phoneSso))

  // all: the kept one too
  t.equal(await api.changePassword('alice', 'fourth password', { endSessions: 'all', keepSsoSession: laptopSso }), 1)
  t.equal(await signedInAs(laptop), null)
  await api.events.flush()
  t.match(events.alpha.at(-1), { type: 'deauthenticate', sso_session: laptopSso, reason: 'password_changed' })

  await t.rejects(api.changePassword('alice', ''), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD' })
  await t.rejects(api.changePassword('alice', 'x'.repeat(5000)), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD', message: /at most/ })
  await t.rejects(api.changePassword('nobody', 'x'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })
  t.equal(await api.changePassword('bob', 'bob new password'), 0, 'no sessions: nothing ended')

  // updateUser can set a password too (without ending sessions)
  await api.updateUser('alice', { password: 'fifth passphrase here' })
  t.equal((await signInAs(app, new Browser(app), alpha.secret, 'alice', 'fifth passphrase here')).res.statusCode, 303)
})
