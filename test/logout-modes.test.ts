import t from 'tap'
import { tempDir } from './helpers/temp.js'
import { request } from 'undici'
import { startFleet, type Fleet } from '../scripts/fleet.mjs'
import { HttpBrowser } from './helpers/http-browser.js'

const PASSWORD = 'logout-modes-password'
const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef'

/** Polls until `check` holds (events travel asynchronously), bounded. */
async function eventually (what: string, check: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Signed in at a service? Its /sso/test/ answers 200 for a user, 302 to /login/ otherwise. */
async function signedIn (browser: HttpBrowser, base: string): Promise<boolean> {
  return (await browser.send('GET', `${base}/sso/test/`)).status === 200
}

async function signedInAtGateway (browser: HttpBrowser, fleet: Fleet): Promise<boolean> {
  return /Signed in as/.test((await browser.send('GET', `${fleet.urls.gateway}/welcome/`)).body)
}

/** Signs a browser in at A (password, unless the gateway session is alive) and then B (silently). */
async function signInBoth (browser: HttpBrowser, fleet: Fleet): Promise<void> {
  let page = await browser.go('GET', `${fleet.urls.a}/private`)
  if (page.url.startsWith(`${fleet.urls.gateway}/login/`)) {
    page = await browser.go('POST', page.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(page.body) })
  }
  if (page.url !== `${fleet.urls.a}/private`) throw new Error(`sign-in at A ended at ${page.url} (${page.status})`)
  const b = await browser.go('GET', `${fleet.urls.b}/account`)
  if (b.url !== `${fleet.urls.b}/account`) throw new Error(`silent sign-in at B ended at ${b.url}`)
}

async function logout (browser: HttpBrowser, base: string, scope: 'app' | 'session' | 'everywhere'): Promise<string> {
  const form = await browser.send('GET', `${base}/logout/`)
  const page = await browser.go('POST', `${base}/logout/`, { _csrf: HttpBrowser.csrf(form.body), scope })
  return page.body
}

async function admin (fleet: Fleet, path: string, body: Record<string, unknown> = {}): Promise<number> {
  const res = await request(`${fleet.internal.gateway}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  await res.body.dump()
  return res.statusCode
}

t.test('leave this app, sign out, sign out everywhere: each does exactly what it says', async (t) => {
  const fleet = await startFleet({
    dataDir: tempDir('sso-logout-modes-'),
    password: PASSWORD,
    appEnv: { gateway: { ADMIN_TOKEN } }
  })
  t.teardown(fleet.stop)
  const laptop = new HttpBrowser()
  const phone = new HttpBrowser()
  await signInBoth(laptop, fleet)
  await signInBoth(phone, fleet)

  // 1. Leave this app: only the laptop's session at A ends.
  const left = await logout(laptop, fleet.urls.a, 'app')
  t.match(left, /You left this app/, 'a page saying this app was left')
  t.match(left, /still signed in at the sign-in service/, 'and that the person is still signed in elsewhere')
  t.notOk(await signedIn(laptop, fleet.urls.a), 'laptop: A ended')
  t.ok(await signedIn(laptop, fleet.urls.b), 'laptop: B untouched')
  t.ok(await signedInAtGateway(laptop, fleet), 'laptop: gateway untouched')
  t.ok(await signedIn(phone, fleet.urls.a), 'phone: A untouched')

  // 2. Sign out (this browser): the laptop's SSO session ends everywhere, the phone keeps its own.
  await signInBoth(laptop, fleet)
  await logout(laptop, fleet.urls.b, 'session')
  t.notOk(await signedIn(laptop, fleet.urls.b), 'laptop: B ended')
  t.notOk(await signedInAtGateway(laptop, fleet), 'laptop: gateway ended')
  await eventually('A to end the laptop session', async () => !(await signedIn(laptop, fleet.urls.a)))
  t.pass('laptop: A ended (event)')
  t.ok(await signedIn(phone, fleet.urls.a), 'phone: A still signed in')
  t.ok(await signedIn(phone, fleet.urls.b), 'phone: B still signed in')
  t.ok(await signedInAtGateway(phone, fleet), 'phone: gateway still signed in')
  const again = await laptop.go('GET', `${fleet.urls.a}/private`)
  t.match(again.body, /type="password"/, 'laptop: signing in again asks for the password')

  // 3. Sign out everywhere, from the phone: both devices, every app.
  await signInBoth(laptop, fleet)
  await logout(phone, fleet.urls.a, 'everywhere')
  for (const [name, browser] of [['phone', phone], ['laptop', laptop]] as const) {
    await eventually(`${name} signed out of A and B`, async () =>
      !(await signedIn(browser, fleet.urls.a)) && !(await signedIn(browser, fleet.urls.b)))
    t.notOk(await signedInAtGateway(browser, fleet), `${name}: gateway ended`)
  }
})

t.test('every other way an SSO session ends reaches the services', async (t) => {
  const fleet = await startFleet({
    dataDir: tempDir('sso-session-ends-'),
    password: PASSWORD,
    appEnv: { gateway: { ADMIN_TOKEN, IDLE_TIMEOUT: '3000', HOUSEKEEPING_INTERVAL: '250' } }
  })
  t.teardown(fleet.stop)

  t.test('idle expiry at the gateway', async (t) => {
    const browser = new HttpBrowser()
    await signInBoth(browser, fleet)
    // Only the services are used: the gateway session idles out and the services hear of it.
    await eventually('the services to end the idle SSO session', async () =>
      !(await signedIn(browser, fleet.urls.a)) && !(await signedIn(browser, fleet.urls.b)), 10_000)
    t.notOk(await signedInAtGateway(browser, fleet))
  })

  t.test('an admin revokes one SSO session', async (t) => {
    const mine = new HttpBrowser()
    const other = new HttpBrowser()
    await signInBoth(mine, fleet)
    await signInBoth(other, fleet)
    const sso = ((await mine.send('GET', `${fleet.urls.a}/sso/test/`)).body.match(/"ssoSession":"([^"]+)"/) ?? [])[1]
    t.ok(sso, 'the service knows its SSO session')
    t.equal(await admin(fleet, '/admin/sessions/revoke', { username: 'alice', ssoSession: sso }), 200)
    await eventually('the revoked session to end at A and B', async () =>
      !(await signedIn(mine, fleet.urls.a)) && !(await signedIn(mine, fleet.urls.b)))
    t.ok(await signedIn(other, fleet.urls.a), 'the other session lives on')
  })

  t.test('a password change that ends the other sessions', async (t) => {
    const browser = new HttpBrowser()
    await signInBoth(browser, fleet)
    t.equal(await admin(fleet, '/admin/users/password', { username: 'alice', password: PASSWORD, endSessions: 'all' }), 200)
    await eventually('sessions to end after the password change', async () =>
      !(await signedIn(browser, fleet.urls.a)) && !(await signedIn(browser, fleet.urls.b)))
    t.notOk(await signedInAtGateway(browser, fleet))
  })

  t.test('a disabled user', async (t) => {
    const browser = new HttpBrowser()
    await signInBoth(browser, fleet)
    t.equal(await admin(fleet, '/admin/users/disable', { username: 'alice' }), 200)
    await eventually('sessions to end for the disabled user', async () =>
      !(await signedIn(browser, fleet.urls.a)) && !(await signedIn(browser, fleet.urls.b)))
    const form = await browser.go('GET', `${fleet.urls.a}/private`)
    const refused = await browser.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
    t.equal(refused.status, 401, 'a disabled user cannot sign in')
    t.equal(await admin(fleet, '/admin/users/enable', { username: 'alice' }), 200)
  })

  t.test('a deleted user', async (t) => {
    const browser = new HttpBrowser()
    await signInBoth(browser, fleet)
    t.equal(await admin(fleet, '/admin/users/delete', { username: 'alice' }), 200)
    await eventually('sessions to end for the deleted user', async () =>
      !(await signedIn(browser, fleet.urls.a)) && !(await signedIn(browser, fleet.urls.b)))
  })
})

t.test('passive and forced sign-in, both ways', async (t) => {
  const fleet = await startFleet({ dataDir: tempDir('sso-prompt-'), password: PASSWORD })
  t.teardown(fleet.stop)
  const browser = new HttpBrowser()

  const anonymous = await browser.go('GET', `${fleet.urls.a}/login/?prompt=none&next=/`)
  t.equal(anonymous.url, `${fleet.urls.a}/`, 'passive, not signed in: back anonymous')
  t.notMatch(anonymous.body, /type="password"/, 'no form')
  t.match(anonymous.body, /Not signed in/)

  const forcedFirst = await browser.go('GET', `${fleet.urls.a}/login/?prompt=login&next=/private`)
  t.match(forcedFirst.body, /type="password"/, 'forced, not signed in: the form')
  await browser.go('POST', forcedFirst.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(forcedFirst.body) })

  const passive = await browser.go('GET', `${fleet.urls.b}/login/?prompt=none&next=/account`)
  t.equal(passive.url, `${fleet.urls.b}/account`, 'passive, signed in: signed in without a form')
  t.match(passive.body, /Signed in as <strong>alice/)

  const forced = await browser.go('GET', `${fleet.urls.b}/login/?prompt=login&next=/account`)
  t.match(forced.body, /type="password"/, 'forced, signed in: the form all the same')
  const done = await browser.go('POST', forced.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(forced.body) })
  t.equal(done.url, `${fleet.urls.b}/account`)
  t.ok(await signedIn(browser, fleet.urls.a), 'A still signed in: the SSO session was kept')
})

t.test('absolute expiry at the gateway ends the service sessions, however busy the browser is', async (t) => {
  const fleet = await startFleet({
    dataDir: tempDir('sso-absolute-'),
    password: PASSWORD,
    appEnv: { gateway: { IDLE_TIMEOUT: '3000', ABSOLUTE_TIMEOUT: '5000', HOUSEKEEPING_INTERVAL: '250' } }
  })
  t.teardown(fleet.stop)
  const browser = new HttpBrowser()
  await signInBoth(browser, fleet)
  const started = Date.now()
  // Busy at the gateway every second, so the idle limit never ends the session: only the absolute one can.
  let signedInUntil = started
  while (Date.now() - started < 12_000) {
    const gw = await signedInAtGateway(browser, fleet)
    if (!gw) break
    signedInUntil = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  t.ok(signedInUntil - started >= 3000, 'kept alive past the idle limit by use')
  t.notOk(await signedInAtGateway(browser, fleet), 'the gateway session ended at its absolute limit')
  await eventually('A and B to end the session', async () =>
    !(await signedIn(browser, fleet.urls.a)) && !(await signedIn(browser, fleet.urls.b)))
  t.pass('the services ended it too')
})
