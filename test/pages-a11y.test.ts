// Every page of both plugins, walked in a real Chromium at a desktop and a phone size (and the
// phone size in dark mode), checked with axe-core against WCAG 2.1 AA: zero violations. Screenshots
// go to test-artifacts/pages/ (gitignored; CI keeps them as artifacts).
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import t from 'tap'
import type { Page } from 'playwright-core'
import { startFleet } from '../scripts/fleet.mjs'
import { tempDir } from './helpers/temp.js'
import { launchChromium, requireChromium } from './helpers/chromium.js'

const PASSWORD = 'a11y-test-password'
const ADMIN_TOKEN = 'a11y-admin-token-0123456789abcdefghijkl'
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'pages')
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const SIZES = [
  { name: 'desktop', width: 1280, height: 800, scheme: 'light' },
  { name: 'mobile', width: 375, height: 740, scheme: 'light' },
  { name: 'mobile-dark', width: 375, height: 740, scheme: 'dark' }
] as const

/** The few DOM things the in-page callbacks read (the tests compile without the DOM library). */
declare const document: { documentElement: { scrollWidth: number, clientWidth: number }, activeElement: { id: string } | null }

interface AxeViolation { id: string, impact: string, help: string, nodes: Array<{ target: string[], failureSummary: string }> }

/** Runs axe-core in the page (injected with evaluate: the pages' CSP forbids script tags). */
async function axe (page: Page): Promise<AxeViolation[]> {
  if (!await page.evaluate(() => 'axe' in globalThis)) await page.evaluate(AXE_SOURCE)
  return await page.evaluate(async () => {
    const result = await (globalThis as unknown as { axe: { run: (ctx: unknown, o: unknown) => Promise<{ violations: AxeViolation[] }> } })
      .axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }))
  })
}

// 24 pages × 3 sizes, each with axe and a full-page screenshot: longer than the suite's default.
t.setTimeout(420_000)

t.test('every page of both plugins passes axe-core (WCAG 2.1 AA) at 1280x800 and 375x740', async (t) => {
  requireChromium()
  mkdirSync(ARTIFACTS, { recursive: true })
  const fleet = await startFleet({
    dataDir: tempDir('sso-a11y-'),
    hosts: { gateway: 'gateway.localhost', a: 'a.localhost', b: 'b.localhost' },
    password: PASSWORD,
    appEnv: { gateway: { ADMIN_TOKEN, GATEWAY_LOGIN_RATE_LIMIT: '20' } },
    ...(process.env.A11Y_DEBUG === undefined ? {} : { output: 'inherit' as const })
  })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  const admin = async (path: string, body: object): Promise<void> => {
    const res = await fetch(`${fleet.internal.gateway}/admin${path}`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body)
    })
    if (res.status !== 200) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`)
  }

  const checked: string[] = []
  /** The page as it is now, at every size: axe finds nothing; a screenshot is kept. */
  async function check (name: string, expect: { status?: number, text?: RegExp } = {}, status?: number): Promise<void> {
    if (expect.status !== undefined) t.equal(status, expect.status, `${name}: status`)
    if (expect.text !== undefined) t.match(await page.textContent('main'), expect.text, `${name}: says what happened`)
    t.ok(await page.$('meta[name=viewport]'), `${name}: viewport tag`)
    for (const size of SIZES) {
      await page.setViewportSize({ width: size.width, height: size.height })
      await page.emulateMedia({ colorScheme: size.scheme })
      const violations = await axe(page)
      t.same(violations, [], `${name} at ${size.name}: no WCAG 2.1 AA violation`)
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      t.ok(overflow <= 0, `${name} at ${size.name}: no horizontal scrolling`)
      await page.screenshot({ path: join(ARTIFACTS, `${name}-${size.name}.png`), fullPage: true })
    }
    await page.setViewportSize({ width: 1280, height: 800 })
    await page.emulateMedia({ colorScheme: 'light' })
    checked.push(name)
  }
  const go = async (url: string): Promise<number | undefined> => (await page.goto(url))?.status()
  const submit = async (): Promise<number | undefined> => {
    const [res] = await Promise.all([page.waitForNavigation(), page.click('main form button[type=submit]')])
    return res?.status()
  }

  // Service pages, signed out.
  await check('service-not-signed-in-logout', { status: 200, text: /You are not signed in/ }, await go(`${urls.a}/logout/`))
  await check('service-sign-in-error', { status: 400, text: /Sign-in failed/ }, await go(`${urls.a}/sso/accept/`))
  await check('service-404', { status: 404, text: /Page not found/ }, await go(`${urls.a}/no-such-page`))

  // Passive check while signed out: declined, back at the app anonymously.
  await go(`${urls.a}/login/?prompt=none&next=/`)
  t.equal(page.url(), `${urls.a}/`, 'passive decline: back at the app')
  await check('passive-decline', { text: /Not signed in/ })

  // Gateway: invalid link, the sign-in form (with the service's display name), wrong password.
  await check('gateway-invalid-link', { status: 400, text: /no longer valid/ }, await go(`${urls.gateway}/login/?sso=not-a-token`))
  t.ok(await page.$('a#next-step'), 'invalid link: a link to go on')
  await check('gateway-404', { status: 404, text: /Page not found/ }, await go(`${urls.gateway}/no-such-page`))
  await go(`${urls.a}/private`)
  t.ok(page.url().startsWith(`${urls.gateway}/login/?sso=`), 'sent to the gateway form')
  const signInUrl = page.url()
  await check('gateway-sign-in', { text: /to continue to Service A/ })
  await page.fill('#username', 'alice')
  await page.fill('#password', 'wrong password')
  await check('gateway-wrong-password', { status: 401, text: /Wrong username or password/ }, await submit())
  t.equal(await page.getAttribute('#password', 'aria-invalid'), 'true', 'the failed field is marked')
  t.equal(await page.getAttribute('#password', 'aria-describedby'), 'login-error', '…and described by the error')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'password', 'focus on the password, not the username')

  // Expired form: the CSRF token no longer matches.
  await page.$eval('input[name=_csrf]', (el) => { (el as unknown as { value: string }).value = 'stale' })
  await page.fill('#password', PASSWORD)
  await check('gateway-expired-form', { status: 403, text: /This form has expired/ }, await submit())
  t.equal(await page.getAttribute('#next-step', 'href'), new URL(signInUrl).pathname + new URL(signInUrl).search, 'back to sign-in keeps ?sso=')

  // Lockout: ten failures for one account from one address.
  await go(signInUrl)
  let status: number | undefined
  for (let i = 0; i < 11; i++) {
    await page.fill('#username', 'mallory')
    await page.fill('#password', `guess ${i}`)
    status = await submit()
    if (status === 429) break
  }
  await check('gateway-lockout', { status: 429, text: /Too many failed attempts for this account/ }, status)

  // Sign in for real: back at A.
  await go(signInUrl)
  await page.fill('#username', 'alice')
  await page.fill('#password', PASSWORD)
  await submit()
  t.equal(page.url(), `${urls.a}/private`, 'signed in at A')

  // No access: B is closed to alice (a group she is not in).
  await admin('/groups/create', { group: 'b-team' })
  await admin('/services/access', { service: 'service-b', groups: ['b-team'] })
  await check('gateway-no-access', { status: 403, text: /do not have access to Service B/ }, await go(`${urls.b}/account`))
  t.equal(await page.getAttribute('#next-step', 'href'), `${urls.b}/`, 'no access: the way back goes to the app')
  await admin('/services/access', { service: 'service-b' })

  // Gateway pages, signed in.
  await check('gateway-welcome', { status: 200, text: /Signed in as/ }, await go(`${urls.gateway}/welcome/`))
  await check('gateway-sessions', { status: 200, text: /This browser/ }, await go(`${urls.gateway}/sessions/`))
  await check('gateway-logout-confirm', { status: 200, text: /Sign out\?/ }, await go(`${urls.gateway}/logout/`))

  // Service sign-out: the three ways out, and what each signed-out page says.
  await check('service-logout-choices', { status: 200, text: /Leave this app/ }, await go(`${urls.a}/logout/`))
  await Promise.all([page.waitForNavigation(), page.click('#leave')])
  await check('service-signed-out-app', { text: /You left this app/ })
  await Promise.all([page.waitForNavigation(), page.click('#sign-in-again')])
  t.equal(page.url(), `${urls.a}/`, 'back to the app, signed in again without a password')
  await check('service-signed-in-home', { text: /Signed in as alice/ })
  await check('service-signed-in-signed-out-page', { status: 200, text: /You are signed in/ }, await go(`${urls.a}/sso/signed-out/?scope=app`))
  await go(`${urls.a}/logout/`)
  await Promise.all([page.waitForNavigation(), page.click('#logout')])
  await check('service-signed-out-session', { text: /You are signed out of this browser/ })

  // Sign in again, then out everywhere from the service, then sign out at the gateway.
  await go(`${urls.a}/private`)
  if (page.url().startsWith(`${urls.gateway}/login/`)) {
    await page.fill('#username', 'alice')
    await page.fill('#password', PASSWORD)
    await submit()
  }
  await go(`${urls.a}/logout/`)
  await Promise.all([page.waitForNavigation(), page.click('#logout-everywhere')])
  await check('service-signed-out-everywhere', { text: /You are signed out everywhere/ })
  await check('gateway-logout-nobody', { status: 200, text: /Nobody is signed in in this browser/ }, await go(`${urls.gateway}/logout/`))
  await check('gateway-welcome-signed-out', { status: 200, text: /Nobody is signed in/ }, await go(`${urls.gateway}/welcome/`))
  await go(`${urls.gateway}/login/`)
  await page.fill('#username', 'alice')
  await page.fill('#password', PASSWORD)
  await submit()
  await go(`${urls.gateway}/logout/`)
  await Promise.all([page.waitForNavigation(), page.click('#logout')])
  await check('gateway-signed-out', { text: /You are signed out of every application in this browser/ })

  // Rate limit (last: it holds for this address for a minute): a friendly page with the way back.
  await go(`${urls.a}/private`)
  const freshUrl = page.url()
  t.ok(freshUrl.startsWith(`${urls.gateway}/login/?sso=`), 'a new sign-in from A')
  for (let i = 0; i < 25; i++) {
    if (await page.$('#username') === null) await go(freshUrl)
    await page.fill('#username', 'alice')
    await page.fill('#password', `rate ${i}`)
    status = await submit()
    if (status === 429 && (await page.textContent('h1')) === 'Too many attempts') break
  }
  await check('gateway-rate-limit', { status: 429, text: /Wait \d+ seconds, then try again/ }, status)
  t.notMatch(await page.textContent('main'), /Rate limit exceeded/, 'not the library\'s raw text')
  t.match(await page.getAttribute('#next-step', 'href'), /^\/login\/\?sso=/, 'back to sign-in keeps ?sso=')

  t.equal(checked.length, 24, `${checked.length} pages checked`)
})
