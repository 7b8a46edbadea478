import t from 'tap'
import { Browser, buildApp, call, logLines, obtain, PASSWORD, record, signInAs } from './helpers.js'

async function setup (options: Parameters<typeof buildApp>[0] = {}) {
  const log = logLines()
  const { app, agent } = await buildApp(options, log.server)
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  await app.ssoGateway.createUser({ username: 'bob', password: PASSWORD })
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test', access: { users: ['bob'] } })
  const events = record(agent, 'http://alpha.test')
  return { app, agent, secret, events, log }
}

t.test('a user without access sees a "no access" page; the token stays pending and the service hears nothing', async (t) => {
  const { app, secret, events, log } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const { res, token } = await signInAs(app, browser, secret, 'alice')
  t.equal(res.statusCode, 403)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.body, /No access to alpha/)
  t.match(res.body, /signed in as alice, but you do not have access to alpha/)
  t.match(res.body, /<form method="post" action="\/logout\/"[^>]*>[\s\S]*Sign out to switch account/, 'a sign-out form, to switch account')
  t.match(res.body, /<a class="sso-button sso-button-primary" href="http:\/\/alpha\.test\/" id="next-step">Back to alpha<\/a>/, 'the way back goes to the app')

  const get = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.equal(get.statusCode, 409, 'the request was not authenticated: still pending')
  t.equal(get.json().code, 'FST_SSO_GATEWAY_PENDING')
  await app.ssoGateway.events.flush()
  t.same(events, [], 'no event reached the service')
  t.match(log.lines.find((l) => l.audit === 'access_denied'), { service: 'alpha', user: 'alice' }, 'the refusal is audited')

  // Coming back to the same sign-in link while signed in: the same page, no form.
  const again = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(again.statusCode, 403)
  t.match(again.body, /No access to alpha/)

  // The sign-out button on the page works.
  const out = await browser.request('POST', '/logout/', { _csrf: Browser.csrf(res.body) })
  t.match(out.body, /You are signed out/)
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/)

  // bob is listed: he gets through.
  const bob = await signInAs(app, new Browser(app), secret, 'bob')
  t.equal(bob.res.statusCode, 303)
  t.match(bob.res.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
})

t.test('granting access by user lets the next sign-in through', async (t) => {
  const { app, secret, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  t.equal((await signInAs(app, browser, secret, 'alice')).res.statusCode, 403)
  const updated = await app.ssoGateway.updateService('alpha', { access: { users: ['bob', 'ALICE'] } })
  const alice = await app.ssoGateway.getUser('alice')
  t.same(updated.access?.users.includes(alice!.id), true, 'stored by the stable user id')
  const token = await obtain(app, secret)
  const res = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(res.statusCode, 302, 'signed in already: straight through')
  t.match(res.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  const get = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  t.match(get.json(), { authenticated: true, user_identy: 'alice' })
  await app.ssoGateway.events.flush()
  t.match(events, [{ type: 'update_account', username: 'alice' }])

  // Access removed again: refused again; null means everyone.
  await app.ssoGateway.updateService('alpha', { access: { users: [] } })
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, secret)}`)).statusCode, 403)
  t.equal((await app.ssoGateway.updateService('alpha', { access: null })).access, null)
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, secret)}`)).statusCode, 302)
})

t.test('granting access by group lets the next sign-in through', async (t) => {
  const { app, secret } = await setup()
  t.teardown(() => app.close())
  await app.ssoGateway.groups.create('staff')
  await app.ssoGateway.updateService('alpha', { access: { groups: ['staff'] } })
  const browser = new Browser(app)
  t.equal((await signInAs(app, browser, secret, 'alice')).res.statusCode, 403, 'not a member yet')
  await app.ssoGateway.groups.addMember('staff', 'alice')
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, secret)}`)).statusCode, 302, 'a member of a listed group')
  await app.ssoGateway.groups.removeMember('staff', 'alice')
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, secret)}`)).statusCode, 403, 'no longer a member')
})

t.test('the accessCheck option refuses or allows after the stored rule', async (t) => {
  const asked: Array<{ user: string, groups: string[], service: string }> = []
  const { app, secret, events } = await setup({
    accessCheck: async (user, service) => {
      asked.push({ user: user.username, groups: user.groups, service: service.name })
      return user.username === 'bob' && user.groups.includes('ops')
    }
  })
  t.teardown(() => app.close())
  await app.ssoGateway.updateService('alpha', { access: null })
  await app.ssoGateway.groups.create('ops')
  const browser = new Browser(app)
  const refused = await signInAs(app, browser, secret, 'bob')
  t.equal(refused.res.statusCode, 403, 'the hook said no')
  t.match(refused.res.body, /No access to alpha/)
  t.same(asked, [{ user: 'bob', groups: [], service: 'alpha' }], 'the hook gets the user with groups and the service')

  await app.ssoGateway.groups.addMember('ops', 'bob')
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, secret)}`)).statusCode, 302, 'the hook said yes')
  t.same(asked[1], { user: 'bob', groups: ['ops'], service: 'alpha' })

  // The stored rule is asked first: a user it refuses never reaches the hook.
  await app.ssoGateway.updateService('alpha', { access: { users: ['alice'] } })
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, secret)}`)).statusCode, 403)
  t.equal(asked.length, 2, 'the hook was not asked')
  await app.ssoGateway.events.flush()
  t.equal(events.filter((e) => e.type === 'update_account' && e.changed === undefined).length, 1, 'only the allowed sign-in reached the service')
})

t.test('invalid access rules are refused with clear errors', async (t) => {
  const { app } = await setup()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  await t.rejects(api.registerService({ name: 'x', baseUrl: 'http://x.test', access: 'bob' as never }),
    { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /access must be \{ users\?, groups\? \} or null/ })
  await t.rejects(api.registerService({ name: 'x', baseUrl: 'http://x.test', access: { users: ['nobody'] } }),
    { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /access: no user "nobody"/ })
  await t.rejects(api.registerService({ name: 'x', baseUrl: 'http://x.test', access: { groups: ['ghosts'] } }),
    { code: 'FST_SSO_GATEWAY_INVALID_GROUP', message: /"ghosts"/ })
  await t.rejects(api.updateService('alpha', { access: { users: ['nobody'] } }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  t.equal(await api.getService('x'), null, 'nothing registered')
  const open = await api.registerService({ name: 'open', baseUrl: 'http://open.test', access: {} })
  t.same(open.service.access, { users: [], groups: [] }, 'an empty rule lets nobody in')
})

t.test('the accessCheck option must be a function', async (t) => {
  await t.rejects(buildApp({ accessCheck: 'bob' as never }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /accessCheck: must be a function/ })
})
