import t from 'tap'
import { Browser, buildApp, seed, signIn, storeOf } from './helpers.js'

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

// seenAt is written at most every min(1 min, idleTimeout / 10), so use keeps even a short session alive.
t.test('use keeps a session alive past a short idleTimeout', async (t) => {
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

/** Moves a stored gateway session back in time by rewriting its timestamps (no clock option exists). */
function age (app: Parameters<typeof seed>[0], change: (data: Record<string, number>) => void): void {
  const db = storeOf(app).db
  const rows = db.prepare('SELECT sid, data FROM gateway_sessions WHERE user_key IS NOT NULL').all() as Array<{ sid: string, data: string }>
  for (const row of rows) {
    const data = JSON.parse(row.data)
    change(data)
    db.prepare('UPDATE gateway_sessions SET data = ? WHERE sid = ?').run(JSON.stringify(data), row.sid)
  }
}

const stored = (app: Parameters<typeof seed>[0]) => {
  const db = storeOf(app).db
  return JSON.parse((db.prepare('SELECT data FROM gateway_sessions WHERE user_key IS NOT NULL').get() as { data: string }).data)
}

t.test('default lifetimes, enforced by the gateway even if the session store still returns the session', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  const minute = 60_000

  age(app, (d) => { d.seenAt! -= 29 * minute; d.createdAt! -= 29 * minute })
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'used 29 minutes ago: still signed in')
  t.ok(Date.now() - stored(app).seenAt < 5000, 'and the use is recorded (the idle clock restarts)')

  age(app, (d) => { d.createdAt! -= 11 * 60 * minute })
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'busy, 11 h 29 min after sign-in')
  age(app, (d) => { d.createdAt! -= 31 * minute })
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/, 'over 12 h after sign-in: ended however busy')

  await signIn(app, browser, secret)
  age(app, (d) => { d.seenAt! -= 31 * minute; d.createdAt! -= 31 * minute })
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/, 'unused 31 minutes: ended')
})

t.test('a disabled user\'s open session ends at the next request', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  await signIn(app, browser, secret)
  // The user is switched off behind the gateway's back (no logout): the session must still end.
  const db = storeOf(app).db
  db.prepare("UPDATE users SET is_active = 0 WHERE username = 'alice'").run()
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/)
})
