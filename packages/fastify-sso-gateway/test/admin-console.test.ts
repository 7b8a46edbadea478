// The admin console over inject: who may come in, step-up before any change, CSRF on every form,
// never framed; every page and every change, each an audit record naming the admin.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Browser, buildApp, PASSWORD, record, seed, signIn, storeOf } from './helpers.js'
import { adminTranslator } from '../src/admin-messages.js'

async function signedIn (app: FastifyInstance, username: string): Promise<Browser> {
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const res = await browser.request('POST', '/login/', { username, password: PASSWORD, _csrf: Browser.csrf(form.body) })
  if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode}`)
  return browser
}

/** Posts a console form with the CSRF token of the page it is on. */
async function submit (browser: Browser, page: string, action: string, fields: Record<string, string> = {}) {
  const html = (await browser.request('GET', page)).body
  return await browser.request('POST', action, { _csrf: Browser.csrf(html), ...fields })
}

/** Makes the browser's last password entry (step-up) old. */
function stale (app: FastifyInstance): void {
  storeOf(app).db.prepare("UPDATE gateway_sessions SET data = json_set(data, '$.authAt', 0)").run()
}

async function consoleApp (t: Test, admin: unknown = true) {
  const { app, agent } = await buildApp({ admin } as never)
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await app.ssoGateway.updateUser('alice', { isSuperuser: true })
  await app.ssoGateway.createUser({ username: 'bob', password: PASSWORD })
  return { app, agent, secret }
}

t.test('the console is off by default; options are checked', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  t.equal((await app.inject('/admin/')).statusCode, 404)
  for (const [admin, name] of [
    ['yes', 'admin'], [{ prefix: 'admin' }, 'admin.prefix'], [{ prefix: '/admin/' }, 'admin.prefix'], [{ prefix: '/sso/x' }, 'admin.prefix'],
    [{ role: { flag: 'isActive' } }, 'admin.role'], [{ role: { group: '' } }, 'admin.role'], [{ role: 'admins' }, 'admin.role'],
    [{ stepUp: 5 }, 'admin.stepUp'], [{ stepUp: 2 * 86_400_000 }, 'admin.stepUp'], [{ extra: 1 }, 'admin.extra']
  ] as const) {
    await t.rejects(buildApp({ admin } as never), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: new RegExp(`Invalid option ${name.replace('.', '\\.')}`) }, JSON.stringify(admin))
  }
  const { app: off } = await buildApp({ admin: false })
  t.teardown(() => off.close())
  t.equal((await off.inject('/admin/')).statusCode, 404, 'admin: false')
})

t.test('who may come in: signed in, admin role; never framed, never cached', async (t) => {
  const { app } = await consoleApp(t)
  const anonymous = await app.inject({ url: '/admin/', headers: { accept: 'text/html' } })
  t.equal(anonymous.statusCode, 401)
  t.match(anonymous.body, /Sign in first/)
  t.match(anonymous.body, /href="\/login\/"/)
  t.equal(anonymous.headers['x-frame-options'], 'DENY')
  t.match(anonymous.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(anonymous.headers['cache-control'], 'no-store')
  t.equal(anonymous.cookies.length, 0, 'a refused visitor gets no session')
  t.equal((await app.inject({ method: 'POST', url: '/admin/users', payload: { username: 'x' } })).statusCode, 401, 'no change either')

  const bob = await signedIn(app, 'bob')
  const refused = await bob.request('GET', '/admin/users')
  t.equal(refused.statusCode, 403)
  t.match(refused.body, /bob.*is not an administrator/)
  t.notMatch(refused.body, /Create a user/)
  t.match(await app.ssoGateway.auditLog({ kind: 'admin_refused' }), [{ user: 'bob', detail: { url: '/admin/users' } }], 'recorded')

  const alice = await signedIn(app, 'alice')
  const home = await alice.request('GET', '/admin/')
  t.equal(home.statusCode, 200)
  t.match(home.body, /Signed in as <strong>alice<\/strong>/)
  t.equal(home.headers['x-frame-options'], 'DENY')
  t.equal(home.headers['referrer-policy'], 'same-origin', 'the Referer stays on this site')
  t.equal((await alice.request('GET', '/admin')).statusCode, 200, 'without the trailing slash too')

  // Rendered through the page kit: its layout and stylesheet, the console's rules served in it.
  t.match(home.body, /<html lang="en">/, 'the console is in English')
  t.equal(home.headers['content-language'], 'en')
  t.match(home.body, /<link rel="stylesheet" href="\/sso\/style.css">/)
  t.match(home.body, /<main class="sso-card sso-card-wide sso-card-full">\s*<div class="sso-console">/, 'inside the kit\'s layout')
  t.match(home.body, /<nav class="sso-console-nav" aria-label="Console">/)
  t.match(anonymous.body, /<main class="sso-card/, 'a refusal too')
  t.notMatch(anonymous.body, /<nav/, 'without the console\'s navigation')
  const russian = await app.inject({ url: '/admin/', headers: { accept: 'text/html', 'accept-language': 'ru-RU,ru' } })
  t.match(russian.body, /<html lang="ru">[\s\S]*<h1>Сначала войдите<\/h1>/, 'in Russian when the browser asks')
  t.equal(russian.headers['content-language'], 'ru')
  alice.headers['accept-language'] = 'ru'
  const ruHome = await alice.request('GET', '/admin/')
  t.match(ruHome.body, /Вы вошли как <strong>alice<\/strong>[\s\S]*<h1>Администрирование<\/h1>/, 'the console\'s frame and page')
  t.notMatch(ruHome.body, /Signed in as|Event delivery/, 'no English left')
  t.equal((await submit(alice, '/admin/groups', '/admin/groups', { name: 'ru-team' })).statusCode, 303)
  t.match((await alice.request('GET', '/admin/groups')).body, /<p class="flash ok" role="status">Группа ru-team создана.<\/p>/, 'the outcome of a change too')
  delete alice.headers['accept-language']
  const css = (await app.inject('/sso/style.css')).body
  t.match(css, /--sso-accent: #2454d6;[\s\S]*\.sso-console-nav \{/, 'the console\'s rules follow the kit\'s')
  t.match(css, /@media \(prefers-color-scheme: dark\) \{ :root \{ --sso-ok-bg:/, 'with a dark scheme')
  t.notMatch(css.slice(css.indexOf('.sso [hidden]')), /#[0-9a-fA-F]{3,8}\b/, 'its rules use the custom properties, no colour of their own')
})

t.test('a locale the console has no texts for: English', async (t) => {
  const { app } = await buildApp({ admin: true, messages: { de: { 'login.heading': 'Anmelden' } } } as never)
  t.teardown(() => app.close())
  const german = await app.inject({ url: '/admin/', headers: { accept: 'text/html', 'accept-language': 'de' } })
  t.match(german.body, /<html lang="en">[\s\S]*<h1>Sign in first<\/h1>/)
  t.equal(german.headers['content-language'], 'en')
  t.match((await app.inject({ url: '/login/', headers: { 'accept-language': 'de' } })).body, /Anmelden/, 'while the sign-in page is in German')
})

t.test('role by group: members of the group, nobody else (not even a superuser)', async (t) => {
  const { app } = await consoleApp(t, { prefix: '/ops/console', role: { group: 'admins' } })
  await app.ssoGateway.groups.create('admins')
  await app.ssoGateway.groups.addMember('admins', 'bob')
  t.equal((await (await signedIn(app, 'bob')).request('GET', '/ops/console/users')).statusCode, 200)
  t.equal((await (await signedIn(app, 'alice')).request('GET', '/ops/console/users')).statusCode, 403)
  const staff = await consoleApp(t, { role: { flag: 'isStaff' } })
  await staff.app.ssoGateway.updateUser('bob', { isStaff: true })
  t.equal((await (await signedIn(staff.app, 'bob')).request('GET', '/admin/')).statusCode, 200, 'a flag role')
})

t.test('every change: CSRF, a fresh password (step-up), an audit record naming the admin', async (t) => {
  const { app } = await consoleApp(t)
  const alice = await signedIn(app, 'alice')
  const noCsrf = await alice.request('POST', '/admin/users', { username: 'carol' })
  t.equal(noCsrf.statusCode, 403, 'no CSRF token')
  t.equal(await app.ssoGateway.getUser('carol'), null)

  const created = await submit(alice, '/admin/users', '/admin/users', { username: 'Carol', password: PASSWORD, email: 'c@x.test', displayName: 'Carol C', isStaff: 'on' })
  t.equal(created.statusCode, 303)
  t.equal(created.headers.location, '/admin/users/carol')
  t.match(await app.ssoGateway.getUser('carol'), { email: 'c@x.test', displayName: 'Carol C', isStaff: true, isSuperuser: false })
  t.match((await alice.request('GET', '/admin/users/carol')).body, /role="status">User carol created\./, 'the outcome shown once')
  t.notMatch((await alice.request('GET', '/admin/users/carol')).body, /User carol created/, 'and only once')
  t.match(await app.ssoGateway.auditLog({ kind: 'user_created' }), [{ user: 'carol', actor: 'admin:alice' }])

  // Stale: signed in long ago. The change is refused; the password page sends back to the form.
  stale(app)
  const page = await alice.request('GET', '/admin/users/carol')
  t.equal(page.statusCode, 200, 'pages stay readable')
  const refused = await alice.request('POST', '/admin/users/carol/active', { _csrf: Browser.csrf(page.body), active: 'false' })
  t.equal(refused.statusCode, 303)
  t.equal(refused.headers.location, '/admin/confirm?next=%2Fadmin%2F', 'no Referer: back to the overview')
  t.match(await app.ssoGateway.getUser('carol'), { isActive: true }, 'nothing changed')
  const withReferer = await app.inject({
    method: 'POST',
    url: '/admin/users/carol/active',
    headers: { cookie: [...alice.cookies].map(([k, v]) => `${k}=${v}`).join('; '), referer: 'http://localhost/admin/users/carol', 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: Browser.csrf(page.body), active: 'false' }).toString()
  })
  t.equal(withReferer.headers.location, '/admin/confirm?next=%2Fadmin%2Fusers%2Fcarol', 'back to the page the form was on')
  const confirm = await alice.request('GET', '/admin/confirm?next=/admin/users/carol')
  t.match(confirm.body, /Confirm your password/)
  const wrong = await alice.request('POST', '/admin/confirm', { _csrf: Browser.csrf(confirm.body), password: 'not the password at all', next: '/admin/users/carol' })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, /Wrong password/)
  t.match(await app.ssoGateway.auditLog({ kind: 'admin_step_up_failed' }), [{ user: 'alice' }])
  const right = await alice.request('POST', '/admin/confirm', { _csrf: Browser.csrf(wrong.body), password: PASSWORD, next: '/admin/users/carol' })
  t.equal(right.statusCode, 303)
  t.equal(right.headers.location, '/admin/users/carol')
  const now = await submit(alice, '/admin/users/carol', '/admin/users/carol/active', { active: 'false' })
  t.equal(now.statusCode, 303)
  t.match(await app.ssoGateway.getUser('carol'), { isActive: false }, 'the change goes through after the step-up')
  for (const next of ['//evil.example/admin/', 'https://evil.example/', '/admin\\evil', '/welcome/']) {
    const c = await alice.request('GET', `/admin/confirm?next=${encodeURIComponent(next)}`)
    t.match(c.body, /name="next" value="\/admin\/"/, `next ${next} is not followed`)
  }
})

t.test('users: list, search, pages, edit, enable, password, groups, sessions, delete; refusals shown', async (t) => {
  const { app, secret } = await consoleApp(t)
  const alice = await signedIn(app, 'alice')
  const store = storeOf(app)
  for (let i = 0; i < 55; i++) {
    await store.users.create({ id: `usr_many${i}`, username: `many${String(i).padStart(2, '0')}`, passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {} })
  }
  const list = await alice.request('GET', '/admin/users')
  t.match(list.body, /href="\/admin\/users\/alice">alice/)
  t.match(list.body, /Next page/)
  const next = /href="(\/admin\/users\?q=&amp;after=[^"]+)"/.exec(list.body)?.[1]?.replace(/&amp;/g, '&')
  t.match((await alice.request('GET', next as string)).body, /many54/, 'the next page')
  const searched = await alice.request('GET', '/admin/users?q=BO')
  t.match(searched.body, /bob/)
  t.notMatch(searched.body, /many00/)
  t.match((await alice.request('GET', '/admin/users?q=zzz')).body, /No users found/)

  const refused = await submit(alice, '/admin/users', '/admin/users', { username: 'bad name!' })
  t.equal(refused.headers.location, '/admin/users')
  t.match((await alice.request('GET', '/admin/users')).body, /role="alert">Invalid username/, 'a refusal is shown on the page')
  const missing = await alice.request('GET', '/admin/users/nobody')
  t.equal(missing.headers.location, '/admin/users')

  t.equal((await submit(alice, '/admin/users/bob', '/admin/users/bob', { email: 'b@x.test', displayName: 'Bob B', isSuperuser: 'on' })).statusCode, 303)
  t.match(await app.ssoGateway.getUser('bob'), { email: 'b@x.test', displayName: 'Bob B', isSuperuser: true, isStaff: false })
  await submit(alice, '/admin/users/bob', '/admin/users/bob', {})
  t.match(await app.ssoGateway.getUser('bob'), { email: null, displayName: null, isSuperuser: false })
  await submit(alice, '/admin/users/bob', '/admin/users/bob/active', { active: 'false' })
  await submit(alice, '/admin/users/bob', '/admin/users/bob/active', { active: 'true' })
  t.match(await app.ssoGateway.getUser('bob'), { isActive: true })
  t.match((await alice.request('GET', '/admin/users/bob')).body, /Enabled\./)

  await submit(alice, '/admin/users/bob', '/admin/users/bob/password', { password: 'short' })
  t.match((await alice.request('GET', '/admin/users/bob')).body, /role="alert">Invalid password: it must be at least 15 characters/)
  await submit(alice, '/admin/users/bob', '/admin/users/bob/password', { password: 'a-new-password-for-bob' })
  t.match((await alice.request('GET', '/admin/users/bob')).body, /Password set; 0 session\(s\) ended/)

  await app.ssoGateway.groups.create('team')
  const withGroup = await submit(alice, '/admin/users/bob', '/admin/users/bob/groups', { group: 'team', member: 'add' })
  t.equal(withGroup.statusCode, 303)
  t.same(await app.ssoGateway.groups.of('bob'), ['team'])
  t.match((await alice.request('GET', '/admin/users/bob')).body, /Remove from team/)
  await submit(alice, '/admin/users/bob', '/admin/users/bob/groups', { group: 'team', member: 'remove' })
  t.same(await app.ssoGateway.groups.of('bob'), [])

  // Sessions: alice signs in to alpha in another browser; the admin revokes it, then all.
  const other = new Browser(app)
  await signIn(app, other, secret)
  const sessions = await app.ssoGateway.listSessions('alice')
  const phone = sessions.find((s) => s.services.includes('alpha'))!
  const userPage = await alice.request('GET', '/admin/users/alice')
  t.match(userPage.body, /alpha/, 'the services each session reached')
  const revoked = await alice.request('POST', '/admin/users/alice/sessions', { _csrf: Browser.csrf(userPage.body), session: phone.id })
  t.equal(revoked.headers.location, '/admin/users/alice')
  t.notOk((await app.ssoGateway.listSessions('alice')).some((s) => s.id === phone.id))
  await submit(alice, '/admin/sessions?user=alice', '/admin/users/alice/sessions', { session: phone.id, from: 'sessions' })
  t.match((await alice.request('GET', '/admin/sessions?user=alice')).body, /That session had already ended/)
  await submit(alice, '/admin/users/bob', '/admin/users/bob/sessions', {})
  t.match((await alice.request('GET', '/admin/users/bob')).body, /Signed out everywhere \(0 session\(s\)\)/)

  t.equal((await submit(alice, '/admin/users/bob', '/admin/users/bob/delete', { confirm: 'bobby' })).headers.location, '/admin/users/bob')
  t.match((await alice.request('GET', '/admin/users/bob')).body, /Type the username to confirm/)
  t.ok(await app.ssoGateway.getUser('bob'), 'not deleted without the name typed')
  const deleted = await submit(alice, '/admin/users/bob', '/admin/users/bob/delete', { confirm: 'bob' })
  t.equal(deleted.headers.location, '/admin/users')
  t.equal(await app.ssoGateway.getUser('bob'), null)
  t.ok((await app.ssoGateway.auditLog({ user: 'bob' })).filter((r) => r.actor === 'admin:alice').length >= 6, 'each change recorded, naming alice')
})

t.test('groups: create, list with members, delete', async (t) => {
  const { app } = await consoleApp(t)
  const alice = await signedIn(app, 'alice')
  t.match((await alice.request('GET', '/admin/groups')).body, /No groups yet/)
  await submit(alice, '/admin/groups', '/admin/groups', { name: ' staff ' })
  await app.ssoGateway.groups.addMember('staff', 'bob')
  const page = await alice.request('GET', '/admin/groups')
  t.match(page.body, /Group staff created/)
  t.match(page.body, /<td>staff<\/td>\s*<td><a href="\/admin\/users\/bob">bob<\/a>/)
  await submit(alice, '/admin/groups', '/admin/groups', { name: '' })
  t.match((await alice.request('GET', '/admin/groups')).body, /Invalid or unknown group/)
  await submit(alice, '/admin/groups', '/admin/groups/delete', { name: 'staff' })
  t.same(await app.ssoGateway.groups.list(), [])
  await submit(alice, '/admin/groups', '/admin/groups/delete', { name: 'staff' })
  t.match((await alice.request('GET', '/admin/groups')).body, /No group staff/)
  t.match(await app.ssoGateway.auditLog({ kind: 'group_deleted' }), [{ actor: 'admin:alice', detail: { group: 'staff' } }])
})

t.test('services: register (secrets once), settings, enable, access, rotate, delivery and replay', async (t) => {
  const { app, agent } = await consoleApp(t)
  const alice = await signedIn(app, 'alice')
  t.match((await alice.request('GET', '/admin/services')).body, /href="\/admin\/services\/alpha">alpha/)
  const registered = await submit(alice, '/admin/services', '/admin/services', {
    name: 'beta', displayName: 'Beta app', baseUrl: 'http://beta.test/', eventUrl: '', protocol: 'fastify-sso', fields: 'email, groups', freshLogin: 'on'
  })
  t.equal(registered.statusCode, 200)
  t.match(registered.body, /shown only once/)
  const secret = /<code id="secret">([^<]+)</.exec(registered.body)?.[1]
  t.ok(secret !== undefined && /<code id="signing-secret">whsec_/.test(registered.body), 'both secrets on the page')
  t.equal(registered.headers['cache-control'], 'no-store')
  t.match(await app.ssoGateway.getService('beta'), { displayName: 'Beta app', fields: ['email', 'groups'], freshLogin: true, baseUrl: 'http://beta.test' })
  const page = await alice.request('GET', '/admin/services/beta')
  t.notMatch(page.body, new RegExp(secret as string), 'never shown again')
  t.notMatch(page.body, /whsec_/)
  await submit(alice, '/admin/services', '/admin/services', { name: 'beta', baseUrl: 'http://beta.test' })
  t.match((await alice.request('GET', '/admin/services')).body, /A service named beta already exists/)
  t.equal((await alice.request('GET', '/admin/services/nope')).headers.location, '/admin/services')
  const plain = await submit(alice, '/admin/services', '/admin/services', { name: 'gamma', baseUrl: 'http://gamma.test', eventUrl: 'http://gamma.internal/sso/event/', protocol: '' })
  t.equal(plain.statusCode, 200)
  t.match(await app.ssoGateway.getService('gamma'), { eventUrl: 'http://gamma.internal/sso/event/', protocol: 'fastify-sso', fields: null, displayName: null })

  await submit(alice, '/admin/services/beta', '/admin/services/beta', { baseUrl: 'http://beta2.test', eventUrl: 'http://beta2.test/sso/event/', displayName: '', logoUrl: '/logo.png', fields: '' })
  t.match(await app.ssoGateway.getService('beta'), { baseUrl: 'http://beta2.test', displayName: null, logoUrl: '/logo.png', fields: null, freshLogin: false })
  await submit(alice, '/admin/services/beta', '/admin/services/beta', { baseUrl: 'http://beta2.test', displayName: 'Beta two' })
  t.match(await app.ssoGateway.getService('beta'), { displayName: 'Beta two', logoUrl: null })
  t.match((await alice.request('GET', '/admin/services')).body, /Beta two/, 'the new name listed')
  await submit(alice, '/admin/services/beta', '/admin/services/beta', { baseUrl: 'not a url' })
  t.match((await alice.request('GET', '/admin/services/beta')).body, /role="alert">Invalid service beta: baseUrl/)
  await submit(alice, '/admin/services/beta', '/admin/services/beta/enabled', { enabled: 'false' })
  t.match(await app.ssoGateway.getService('beta'), { enabled: false })
  await submit(alice, '/admin/services/beta', '/admin/services/beta/enabled', { enabled: 'true' })
  await app.ssoGateway.groups.create('team')
  await submit(alice, '/admin/services/beta', '/admin/services/beta/access', { mode: 'listed', users: 'bob', groups: 'team' })
  t.match(await app.ssoGateway.getService('beta'), { access: { groups: ['team'] } })
  t.match((await alice.request('GET', '/admin/services/beta')).body, /name="users" maxlength="2048" value="bob"/, 'usernames shown, not ids')
  await submit(alice, '/admin/services/beta', '/admin/services/beta/access', { mode: 'listed', users: 'nobody' })
  t.match((await alice.request('GET', '/admin/services/beta')).body, /access: no user/)
  await submit(alice, '/admin/services/beta', '/admin/services/beta/access', { mode: 'everyone' })
  t.match(await app.ssoGateway.getService('beta'), { access: null })

  const rotated = await submit(alice, '/admin/services/beta', '/admin/services/beta/rotate', { signingSecret: 'on', overlapHours: '2' })
  t.equal(rotated.statusCode, 200)
  t.match(rotated.body, /<code id="signing-secret">whsec_/)
  t.notMatch(rotated.body, /id="secret"/, 'only the signing secret')
  t.match(rotated.body, /keep working until/)
  t.match((await alice.request('GET', '/admin/services/beta')).body, /A rotation is under way/)
  await submit(alice, '/admin/services/beta', '/admin/services/beta/rotate', { overlapHours: '1' })
  t.match((await alice.request('GET', '/admin/services/beta')).body, /rotate at least one/)
  t.match(await app.ssoGateway.auditLog({ service: 'beta', kind: 'service_secret_rotated' }), [{ actor: 'admin:alice', detail: { rotated: ['signingSecret'], overlap: 7_200_000 } }])
  const secretOnly = await submit(alice, '/admin/services/beta', '/admin/services/beta/rotate', { secret: 'on' })
  t.match(secretOnly.body, /<code id="secret">[^<]+</, 'the new client secret')
  t.notMatch(secretOnly.body, /id="signing-secret"/, 'not the signing secret')
  t.match(await app.ssoGateway.auditLog({ service: 'beta', kind: 'service_secret_rotated' }), [{ detail: { rotated: ['secret'], overlap: 86_400_000 } }], 'no overlap given: 24 hours')

  // Delivery: gamma refuses its events for good (410): they die; the console replays one, then all.
  agent.get('http://gamma.internal').intercept({ path: '/sso/event/', method: 'POST' }).reply(410, 'gone').times(3)
  await app.ssoGateway.updateUser('alice', { email: 'one@x.test' })
  await app.ssoGateway.updateUser('bob', { email: 'two@x.test' })
  await app.ssoGateway.updateUser('bob', { email: 'three@x.test' })
  for (let i = 0; i < 5; i++) await app.ssoGateway.events.flush()
  const gamma = await alice.request('GET', '/admin/services/gamma')
  t.match(gamma.body, /dead: <strong id="dead">3<\/strong>/)
  t.match(gamma.body, /Dead events/)
  t.match(gamma.body, /HTTP 410/)
  t.match((await alice.request('GET', '/admin/')).body, /<td>gamma<\/td><td>0<\/td><td>3<\/td>/, 'the overview shows the dead events')
  const received = record(agent, 'http://gamma.internal')
  const id = /name="event" value="([^"]+)"/.exec(gamma.body)?.[1] as string
  await submit(alice, '/admin/services/gamma', '/admin/services/gamma/replay', { event: id })
  await app.ssoGateway.events.flush()
  t.equal(received.length, 1, 'the replayed event delivered')
  t.match((await alice.request('GET', '/admin/services/gamma')).body, /1 event\(s\) queued again/)
  await submit(alice, '/admin/services/gamma', '/admin/services/gamma/replay', {})
  await app.ssoGateway.events.flush()
  t.equal(received.length, 3, 'all replayed')
  t.match((await alice.request('GET', '/admin/services/gamma')).body, /dead: <strong id="dead">0/)
  t.equal((await submit(alice, '/admin/services/gamma', '/admin/services/nope/replay', {})).headers.location, '/admin/services/nope')

  // beta cannot be reached: its waiting events show the last error.
  const beta = await alice.request('GET', '/admin/services/beta')
  t.match(beta.body, /Last error: <code>[^<]+<\/code>/)
  t.match(beta.body, /failing since/)
})

t.test('sessions page and the audit log with filters and pages', async (t) => {
  const { app, secret } = await consoleApp(t)
  const alice = await signedIn(app, 'alice')
  t.notMatch((await alice.request('GET', '/admin/sessions')).body, /<table/)
  t.match((await alice.request('GET', '/admin/sessions?user=nobody')).body, /No user nobody/)
  t.match((await alice.request('GET', '/admin/sessions?user=bob')).body, /bob has no active session/)
  await signIn(app, new Browser(app), secret)
  t.match((await alice.request('GET', '/admin/sessions?user=alice')).body, /Active SSO sessions of alice[\s\S]*alpha/)

  const audit = await alice.request('GET', '/admin/audit')
  t.match(audit.body, /<td>service_sign_in<\/td><td><\/td><td>alice<\/td><td>alpha<\/td>/)
  t.match(audit.body, /<td>login<\/td>/)
  const filtered = await alice.request('GET', '/admin/audit?user=ALICE&service=alpha&kind=service_sign_in&since=2020-01-01&until=2999-01-01T00:00&before=')
  t.equal((filtered.body.match(/class="audit-record"/g) ?? []).length, 1)
  t.match((await alice.request('GET', '/admin/audit?since=2999-01-01')).body, /No records match/)
  t.match((await alice.request('GET', '/admin/audit?until=nonsense')).body, /class="audit-record"/, 'a time that does not parse is no filter')
  const store = storeOf(app)
  await store.audit.append(Array.from({ length: 120 }, (_, i) => ({ at: Date.now(), kind: 'bulk', actor: null, user: 'bulk', service: null, detail: { i } })))
  const first = await alice.request('GET', '/admin/audit?kind=bulk')
  t.equal((first.body.match(/class="audit-record"/g) ?? []).length, 100)
  const older = /href="\/admin\/audit\?(kind=bulk&amp;before=\d+)"/.exec(first.body)?.[1]?.replace(/&amp;/g, '&')
  t.ok(older, 'a link to older records')
  const second = await alice.request('GET', `/admin/audit?${older as string}`)
  t.equal((second.body.match(/class="audit-record"/g) ?? []).length, 20)
  t.notMatch(second.body, /Older records/)
})

t.test('a session with no password time asks for the password; an unexpected failure is no refusal', async (t) => {
  const { app } = await consoleApp(t)
  const alice = await signedIn(app, 'alice')
  storeOf(app).db.prepare("UPDATE gateway_sessions SET data = json_remove(data, '$.authAt')").run()
  const res = await submit(alice, '/admin/groups', '/admin/groups', { name: 'team' })
  t.equal(res.statusCode, 303)
  t.match(res.headers.location, /^\/admin\/confirm\?next=/, 'step-up first')
  t.equal((await app.ssoGateway.groups.list()).length, 0, 'nothing created')

  const fresh = await signedIn(app, 'alice')
  storeOf(app).db.exec("CREATE TRIGGER no_groups BEFORE INSERT ON groups BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
  const failed = await submit(fresh, '/admin/groups', '/admin/groups', { name: 'team' })
  t.equal(failed.statusCode, 500, 'a server error, not a refusal sent back to the form')
  t.notMatch(failed.body, /disk on fire/, 'its message not shown')
  t.notMatch((await fresh.request('GET', '/admin/groups')).body, /role="alert"/, 'no refusal flash either')
})

t.test('a console text whose parameter is not given keeps its placeholder', async (t) => {
  t.equal(adminTranslator('en')('done.replayed', { replayed: 2 }), adminTranslator('en')('done.replayed').replace('{replayed}', '2'))
  t.match(adminTranslator('en')('done.replayed'), /\{replayed\}/)
})
