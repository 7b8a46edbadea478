import t from 'tap'
import { tempDir } from './helpers/temp.js'
import { startFleet } from '../scripts/fleet.mjs'
import { launchChromium, requireChromium } from './helpers/chromium.js'

const PASSWORD = 'browser-test-password'

t.test('a real Chromium signs in at A, silently at B, signs out at B and is signed out of A', async (t) => {
  requireChromium()
  // Separate host names, as in production: Chromium resolves *.localhost to loopback.
  const fleet = await startFleet({
    dataDir: tempDir('sso-browser-'),
    hosts: { gateway: 'gateway.localhost', a: 'a.localhost', b: 'b.localhost' },
    password: PASSWORD
  })
  t.teardown(fleet.stop)
  const browser = await launchChromium(t)
  const context = await browser.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  const { urls } = fleet

  await page.goto(`${urls.a}/private`)
  t.ok(page.url().startsWith(`${urls.gateway}/login/?sso=`), 'sent to the gateway form')
  await page.fill('#username', 'alice')
  await page.fill('#password', 'wrong password')
  await page.click('button[type=submit]')
  t.match(await page.textContent('#login-error'), /Wrong username or password/)
  await page.fill('#password', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(`${urls.a}/private`)
  t.match(await page.textContent('#who'), /Signed in as alice/)

  await page.goto(`${urls.b}/account`)
  await page.waitForURL(`${urls.b}/account`)
  t.match(await page.textContent('#who'), /Signed in as alice/, 'B signed in without a password')

  // B's own sign-out page offers the three actions; "Sign out" ends this browser's SSO session.
  await page.click('#logout-page')
  await page.waitForURL(`${urls.b}/logout/`)
  t.ok(await page.isVisible('#leave') && await page.isVisible('#logout-everywhere'), 'the three choices are offered')
  await page.click('#logout')
  await page.waitForURL(new RegExp(`^${urls.b.replace(/\./g, '\\.')}/sso/signed-out/`))
  t.match(await page.textContent('body'), /signed out/i, 'a signed-out page, no silent sign-in')
  await page.goto(`${urls.b}/`)
  t.match(await page.textContent('#who'), /Not signed in/)

  const deadline = Date.now() + 10_000
  let aText = ''
  while (Date.now() < deadline) {
    await page.goto(`${urls.a}/`)
    aText = await page.textContent('#who') ?? ''
    if (/Not signed in/.test(aText)) break
    await page.waitForTimeout(200)
  }
  t.match(aText, /Not signed in/, 'A is logged out too')
  await page.goto(`${urls.gateway}/welcome/`)
  t.match(await page.textContent('#who'), /Nobody is signed in/)
})
