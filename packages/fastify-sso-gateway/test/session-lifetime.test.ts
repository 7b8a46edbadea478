import t from 'tap'
import { Browser, buildApp, seed, signIn } from './helpers.js'

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('an unused gateway session ends after idleTimeout', async (t) => {
  const { app, agent } = await buildApp({ idleTimeout: 1000, absoluteTimeout: 60_000 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/)
  await sleep(1100)
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/, 'idle too long')
  const login = await browser.request('GET', '/login/')
  t.equal(login.statusCode, 200, 'the form again, no silent sign-in')
})

t.test('a gateway session ends after absoluteTimeout however busy', async (t) => {
  const { app, agent } = await buildApp({ idleTimeout: 1200, absoluteTimeout: 1200 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  const cookie = browser.cookies.get('sso_gateway_session')
  await sleep(600)
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'still signed in at 600 ms')
  await sleep(700)
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/, 'past the absolute limit')
  t.not(browser.cookies.get('sso_gateway_session'), cookie, 'the old session id is not reused')
})

// Known limitation, reported: checkSessionLifetime (fastify-sso-protocol) writes seenAt at most
// once a minute (SEEN_AT_RESOLUTION), so with an idleTimeout under a minute, use does not
// extend the session: it ends idleTimeout after sign-in however busy.
t.test('use keeps a session alive past a short idleTimeout', { todo: 'seenAt is refreshed at most once a minute (fastify-sso-protocol)' }, async (t) => {
  const { app, agent } = await buildApp({ idleTimeout: 1000, absoluteTimeout: 60_000 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  for (let i = 0; i < 3; i++) {
    await sleep(600)
    t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, `still signed in at ${(i + 1) * 600} ms`)
  }
})

t.test('a disabled user\'s open session ends at the next request', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  // The user is switched off behind the gateway's back (no logout): the session must still end.
  const db = (app.ssoGateway as unknown as { store: { db: import('better-sqlite3').Database } }).store.db
  db.prepare("UPDATE users SET is_active = 0 WHERE username = 'alice'").run()
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/)
})
