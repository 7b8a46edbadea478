// A request still in flight when the gateway signs its user out saves its session late: the
// session store must not write the ended session back (it was an upsert: the user stayed signed in).
import t from 'tap'
import { Browser, buildApp, sendEvent, signIn } from './helpers.js'

for (const [name, event] of [
  ['deauthenticate (every session of the user)', { type: 'deauthenticate', username: 'alice' }],
  ['deauthenticate of one SSO session', { type: 'deauthenticate', username: 'alice', sso_session: 'sso-session-1' }]
] as const) {
  t.test(`${name} during a request: the late save does not resurrect the session`, async (t) => {
    const { app, gateway } = await buildApp(t)
    let started!: () => void
    const inHandler = new Promise<void>((resolve) => { started = resolve })
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    app.get('/slow', async (request) => {
      started()
      await gate
      request.session.seenAt = Date.now() // a change, so @fastify/session saves the session
      return { user: request.ssoUser?.username ?? null }
    })
    app.get('/me', async (request) => ({ user: request.ssoUser?.username ?? null }))
    const browser = new Browser(app)
    await signIn(browser, gateway)
    t.same((await browser.request('/me')).json(), { user: 'alice' })

    const slow = browser.request('/slow')
    await inHandler
    t.equal((await sendEvent(app, event)).statusCode, 200, 'the gateway ends the session meanwhile')
    release()
    t.same((await slow).json(), { user: 'alice' }, 'the request in flight finishes as it began')
    t.same((await browser.request('/me')).json(), { user: null }, 'but its save did not bring the session back')
    t.equal(await app.ssoService.logoutUser('alice'), 0, 'no session of alice is stored')
  })
}
