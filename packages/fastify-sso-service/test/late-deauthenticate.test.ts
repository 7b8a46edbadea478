import { join } from 'node:path'
import t from 'tap'
import { Browser, buildApp, sendEvent, signIn } from './helpers.js'

// Risk: a late "sign out everywhere" (delayed while the service was down) ended the session the
// user opened after it. The gateway now says when it issued the event (`issued_at`) and when it
// vouched for each sign-in (`issued_at` of /sso/get/); only sessions vouched for before the event end.

t.test('a deauthenticate issued before a sign-in does not end it; one issued after does', async (t) => {
  const { app, gateway } = await buildApp(t, { database: join(t.testdir({}), 'service.sqlite') }, (app) => {
    app.get('/me', async (request) => ({ user: request.ssoUser?.username ?? null }))
  })
  const signedInAt = 1_800_000_000_000
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: null, issuedAt: signedInAt })
  const me = async (): Promise<string | null> => (await browser.request('/me')).json().user as string | null

  const late = await sendEvent(app, { type: 'deauthenticate', username: 'alice', reason: 'logout_everywhere', issued_at: signedInAt - 1 })
  t.equal(late.statusCode, 200)
  t.equal(await me(), 'alice', 'the sign-out issued before this sign-in leaves it alone')

  await sendEvent(app, { type: 'deauthenticate', username: 'alice', sso_session: 'sso-x', issued_at: signedInAt + 5 })
  t.equal(await me(), 'alice', 'another SSO session: untouched')

  await sendEvent(app, { type: 'deauthenticate', username: 'alice', issued_at: signedInAt })
  t.equal(await me(), null, 'issued at (or after) the sign-in: the session ends')
})

t.test('per SSO session too; without issued_at (a django-sso gateway) every session ends', async (t) => {
  const { app, gateway } = await buildApp(t, {}, (app) => {
    app.get('/me', async (request) => ({ user: request.ssoUser?.username ?? null }))
  })
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: 'sso-1', issuedAt: 2000 })
  const me = async (): Promise<string | null> => (await browser.request('/me')).json().user as string | null
  await sendEvent(app, { type: 'deauthenticate', username: 'alice', sso_session: 'sso-1', issued_at: 1999 })
  t.equal(await me(), 'alice')
  await sendEvent(app, { type: 'deauthenticate', username: 'alice', sso_session: 'sso-1', issued_at: 2001 })
  t.equal(await me(), null)

  const other = new Browser(app)
  await signIn(other, gateway, { ssoSession: 'sso-2' }) // the gateway did not say when
  await sendEvent(app, { type: 'deauthenticate', username: 'alice', issued_at: 1 })
  t.equal((await other.request('/me')).json().user, null, 'a session without issued_at always ends')
  const third = new Browser(app)
  await signIn(third, gateway, { ssoSession: 'sso-3', issuedAt: 5000 })
  await sendEvent(app, { type: 'deauthenticate', username: 'alice' })
  t.equal((await third.request('/me')).json().user, null, 'an event without issued_at ends every session')
})
