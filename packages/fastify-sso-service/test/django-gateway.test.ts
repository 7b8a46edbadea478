import t from 'tap'
import type { SsoAccount } from 'fastify-sso-protocol'
import type { AccountRemoveContext, AccountRenameContext } from '../src/index.js'
import { audits, Browser, buildApp, csrfOf, SERVICE_TOKEN, signIn } from './helpers.js'
import type { TestApp } from './helpers.js'

// Behind a django-sso gateway (../../shared/peers/django-sso.md): unsigned events with the token
// in the body, in the 1.x or the 2.x/3.x dialect; `/sso/get/` without account or SSO session;
// refusals as HTTP 200 {"error"}; a deauthenticate that tells every service but the caller.

const DJANGO = { acceptUnsignedEvents: true, keepAliveInterval: 0 } as const

async function djangoEvent (app: TestApp['app'], event: Record<string, unknown>): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await app.inject({ method: 'POST', url: '/sso/event/', payload: { ...event, token: SERVICE_TOKEN } })
  return { status: res.statusCode, body: res.json() }
}

/** Signs a browser in the way a django-sso gateway answers: user_identy and next_url only. */
async function djangoSignIn (browser: Browser, test: TestApp): Promise<void> {
  const res = await signIn(browser, test.gateway, { user: null, ssoSession: null })
  if (res.statusCode !== 302) throw new Error(`accept answered ${res.statusCode}: ${res.body}`)
}

async function whoAmI (browser: Browser): Promise<Record<string, unknown> | null> {
  const res = await browser.request({ url: '/sso/test/', headers: { accept: 'application/json' } })
  return res.statusCode === 200 ? res.json().user as Record<string, unknown> : null
}

t.test('1.x: the flags update_account delivered survive the sign-in (the gateway never sent others)', async (t) => {
  const seen: SsoAccount[] = []
  const test = await buildApp(t, { ...DJANGO, onAccount: (a) => { seen.push(a) } })
  t.same(await djangoEvent(test.app, { type: 'update_account', username: 'alice', is_active: true, is_staff: true, is_superuser: true }), { status: 200, body: { ok: true } })
  const browser = new Browser(test.app)
  await djangoSignIn(browser, test)
  t.match(await whoAmI(browser), { username: 'alice', isStaff: true, isSuperuser: true, userId: null, ssoSession: null })
  t.match(seen, [{ source: undefined, username: 'alice', is_staff: true }, { username: 'alice', is_staff: true, is_superuser: true }], 'the sign-in ran the pipeline with them too')

  // A user the gateway never described: safe defaults, as before.
  const other = new Browser(test.app)
  await signIn(other, test.gateway, { user: null, ssoSession: null, username: 'bob', token: 'request-token-2' })
  t.match(await whoAmI(other), { username: 'bob', isActive: true, isStaff: false, isSuperuser: false })
})

t.test('2.x/3.x events: update_account fields, update_fields, deauthenticate, change_user_identy, delete_user', async (t) => {
  const renamed: AccountRenameContext[] = []
  const removed: AccountRemoveContext[] = []
  const changes: Array<[string, readonly string[] | null, Record<string, unknown>]> = []
  const test = await buildApp(t, {
    ...DJANGO,
    accounts: {
      find: () => null,
      create: (ctx) => { changes.push([ctx.account.username, ctx.changed, { ...ctx.attributes }]); return {} },
      update: () => {},
      rename: (ctx) => { renamed.push(ctx) },
      remove: (ctx) => { removed.push(ctx) }
    }
  })
  t.same(await djangoEvent(test.app, { type: 'update_account', fields: { user_identy: 'alice', is_active: true, is_staff: true, is_superuser: false, team: 'blue' } }),
    { status: 200, body: { ok: true } })
  const browser = new Browser(test.app)
  await djangoSignIn(browser, test)
  t.match(await whoAmI(browser), { username: 'alice', isStaff: true, attributes: { team: 'blue' } })

  t.same((await djangoEvent(test.app, { type: 'update_fields', fields: { team: 'red' }, user_identities: ['alice', 'carol'] })).body, { ok: true })
  t.match(changes.slice(-2), [['alice', ['team'], { team: 'red', is_staff: true }], ['carol', ['team'], { team: 'red' }]],
    'each listed account: the last one known with the fields replaced')
  t.match(audits(test.logs, 'account_fields_updated'), [{ users: 2, fields: ['team'] }])

  t.same((await djangoEvent(test.app, { type: 'change_user_identy', old: 'alice', new: 'alicia' })).body, { ok: true })
  t.match(await whoAmI(browser), { username: 'alicia', isStaff: true }, 'the session moved to the new name')
  t.match(renamed, [{ userId: null, oldUsername: 'alice', username: 'alicia' }])

  t.same((await djangoEvent(test.app, { type: 'deauthenticate', user_identy: 'alicia' })).body, { ok: true })
  t.equal(await whoAmI(browser), null, 'deauthenticate with user_identy ends the session')

  await djangoSignIn(browser, test)
  t.same((await djangoEvent(test.app, { type: 'delete_user', user_identy: 'alice' })).body, { ok: true })
  t.equal(await whoAmI(browser), null, 'delete_user ends the sessions')
  t.match(removed, [{ userId: null, username: 'alice' }])

  const bad = await djangoEvent(test.app, { type: 'update_account', fields: { is_active: true } })
  t.equal(bad.status, 400)
  t.match(bad.body, { code: 'FST_SSO_SERVICE_INVALID_EVENT', error: /update_account: fields\.user_identy must be a username/ })
  t.equal((await djangoEvent(test.app, { type: 'update_fields', fields: { team: 'x' } })).status, 400, 'update_fields without users')
})

t.test('signing out ends every local session of the user: a django-sso gateway does not tell the service that asked', async (t) => {
  const test = await buildApp(t, DJANGO)
  const here = new Browser(test.app)
  const phone = new Browser(test.app)
  await djangoSignIn(here, test)
  await signIn(phone, test.gateway, { user: null, ssoSession: null, token: 'request-token-2' })
  let asked = ''
  test.gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, (o) => { asked = String(o.body); return { ok: true } })
  const page = await here.request('/logout/')
  const out = await here.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrfOf(page.body), scope: 'session' } })
  t.equal(out.headers.location, '/sso/signed-out/?scope=everywhere', 'no SSO session to end alone: everywhere')
  t.equal(new URLSearchParams(asked).get('user_identy'), 'alice')
  t.equal(await whoAmI(phone), null, 'the other session of alice here ended too')
  t.match(audits(test.logs, 'logout'), [{ scope: 'everywhere', sessionsEnded: 1 }])
})

t.test('a django-sso gateway refuses with HTTP 200 {"error"}: a refusal, with its message', async (t) => {
  const test = await buildApp(t, DJANGO)
  test.gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { error: "Application token is'nt exist" })
  const page = await new Browser(test.app).request('/login/?next=/x')
  t.equal(page.statusCode, 400)
  t.match(page.body, /Application token is&#39;nt exist/)

  const browser = new Browser(test.app)
  await djangoSignIn(browser, test)
  test.gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, { error: 'nope' })
  const form = await browser.request('/logout/')
  const out = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrfOf(form.body), scope: 'everywhere' } })
  t.equal(out.headers.location, '/sso/signed-out/?scope=everywhere&gateway=unreachable', 'the page says the gateway may not know')
  t.equal(await whoAmI(browser), null, 'signed out here all the same')
  t.match(audits(test.logs, 'logout_report_failed'), [{ code: 'FST_SSO_SERVICE_GATEWAY_REFUSED' }])

  const again = new Browser(test.app)
  await djangoSignIn(again, test)
  test.gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, { done: true })
  const f2 = await again.request('/logout/')
  const o2 = await again.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrfOf(f2.body), scope: 'everywhere' } })
  t.match(o2.headers.location, /gateway=unreachable/, 'an answer without ok: true is not a confirmation')
})
