// The admin console in a real Chromium against the example fleet (real processes, real SQLite):
// each area used as an operator would, the services seen applying what it does, non-admins and a
// stale admin refused, and axe-core on every console page (WCAG 2.1 A and AA: no violation).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { SqliteGatewayStore } from 'fastify-sso-gateway'
import type { Page } from 'playwright-core'
import t from 'tap'
import { request } from 'undici'
import { startFleet } from '../scripts/fleet.mjs'
import { tempDir } from './helpers/temp.js'
import { launchChromium, requireChromium } from './helpers/chromium.js'

const PASSWORD = 'console-browser-password'
const CAROL = 'carol-has-a-long-password'
const ADMIN_TOKEN = 'admin-token-for-console-tests-0123456789'
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
// Real processes (and a browser) on a machine shared with other test runs: a bound well above the usual run.
t.setTimeout(6 * 60_000)

async function eventually (what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  throw new Error(`timed out waiting for ${what}`)
}

t.test('an operator runs the fleet from the console', async (t) => {
  requireChromium()
  const dataDir = tempDir('sso-console-')
  const fleet = await startFleet({
    dataDir,
    hosts: { gateway: 'gateway.localhost', a: 'a.localhost', b: 'b.localhost' },
    password: PASSWORD,
    appEnv: {
      gateway: { DEMO_ADMIN: '1', OUTBOX_INTERVAL: '100', RETRY_SCHEDULE: '[100]' },
      'service-a': { ADMIN_TOKEN },
      'service-b': { ADMIN_TOKEN }
    }
  })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const C = `${urls.gateway}/console`
  const browser = await launchChromium(t)
  // The console's CSP allows no script at all: axe is injected past it (the pages themselves run none).
  const adminContext = await browser.newContext({ bypassCSP: true })
  const admin = await adminContext.newPage()
  admin.setDefaultTimeout(15_000)
  const carolContext = await browser.newContext({ bypassCSP: true })
  const carol = await carolContext.newPage()
  carol.setDefaultTimeout(15_000)

  const checked = new Set<string>()
  // Each page in the kit's light and dark colour schemes.
  async function axe (page: Page, name: string): Promise<void> {
    t.match(await page.evaluate('getComputedStyle(document.body).fontFamily'), /system-ui/, `${name} is styled by the kit`)
    await page.evaluate(AXE)
    for (const colorScheme of ['dark', 'light'] as const) {
      await page.emulateMedia({ colorScheme })
      const result = await page.evaluate(async () => await (globalThis as unknown as { axe: { run: (o: object) => Promise<{ violations: Array<{ id: string, help: string, nodes: Array<{ target: unknown }> }> }> } })
        .axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }))
      t.same(result.violations.map((v) => `${v.id}: ${v.help} (${JSON.stringify(v.nodes.map((n) => n.target))})`), [], `axe: no WCAG 2.1 AA violation on ${name} (${colorScheme})`)
    }
    checked.add(name)
  }
  async function signIn (page: Page, username: string, password: string): Promise<void> {
    await page.goto(`${urls.gateway}/login/`)
    await page.fill('#username', username)
    await page.fill('#password', password)
    await page.click('button[type=submit]')
    await page.waitForURL(`${urls.gateway}/welcome/`)
  }
  const accounts = async (base: string): Promise<string> =>
    await (await request(`${base.replace(/[a-z]+\.localhost/, '127.0.0.1')}/accounts.json`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text()

  // Not signed in: told to sign in first.
  await admin.goto(`${C}/`)
  t.match(await admin.textContent('h1'), /Sign in first/)
  await axe(admin, 'sign-in-first')

  await signIn(admin, 'alice', PASSWORD)
  await admin.goto(`${C}/`)
  t.match(await admin.textContent('h1'), /Administration/)
  await axe(admin, 'overview')

  // Users: create carol.
  await admin.click('nav >> text=Users')
  await admin.fill('#new-username', 'carol')
  await admin.fill('#new-password', CAROL)
  await admin.fill('#new-email', 'carol@example.com')
  await axe(admin, 'users')
  await admin.click('#create-user')
  await admin.waitForURL(`${C}/users/carol`)
  t.match(await admin.textContent('.flash'), /User carol created/)
  await axe(admin, 'user')

  // Groups: create b-team.
  await admin.click('nav >> text=Groups')
  await admin.fill('#group-name', 'b-team')
  await admin.click('#create-group')
  t.match(await admin.textContent('.flash'), /Group b-team created/)
  await axe(admin, 'groups')

  // Services: register one; its secrets are on the page once.
  await admin.click('nav >> text=Services')
  await axe(admin, 'services')
  await admin.fill('#svc-name', 'reports')
  await admin.fill('#svc-display', 'Reports')
  await admin.fill('#svc-base', 'https://reports.example.com')
  await admin.click('#register-service')
  t.match(await admin.textContent('#secret'), /^\S{40,}$/)
  t.match(await admin.textContent('#signing-secret'), /^whsec_/)
  await axe(admin, 'secrets')
  await admin.click('text=Continue to Reports')
  t.notMatch(await admin.content(), /whsec_/, 'never shown again')

  // Grant access: B only for b-team. carol is refused at B, then let in once added.
  await admin.goto(`${C}/services/service-b`)
  await axe(admin, 'service')
  await admin.check('#acc-listed')
  await admin.fill('#acc-groups', 'b-team')
  await admin.click('#save-access')
  t.match(await admin.textContent('.flash'), /Access rule saved/)
  await signIn(carol, 'carol', CAROL)
  await carol.goto(`${urls.b}/account`)
  t.match(await carol.textContent('body'), /you do not have access to Service B/, 'carol is refused at B')
  await admin.goto(`${C}/users/carol`)
  await admin.selectOption('#add-group', 'b-team')
  await admin.click('#add-to-group')
  t.match(await admin.textContent('.flash'), /Added to b-team/)
  await carol.goto(`${urls.b}/account`)
  await carol.waitForURL(`${urls.b}/account`)
  t.match(await carol.textContent('#who'), /Signed in as carol/, 'access granted')
  await carol.goto(`${urls.a}/private`)
  await carol.waitForURL(`${urls.a}/private`)

  // Non-admin: carol is refused at the console.
  const refused = await carol.goto(`${C}/`)
  t.equal(refused?.status(), 403)
  t.match(await carol.textContent('main'), /carol.*not an administrator/)
  await axe(carol, 'refused')

  // Rotate A's signing secret; A keeps only the old one and keeps applying events (signed with both).
  await admin.goto(`${C}/services/service-a`)
  await admin.uncheck('#rot-secret')
  await admin.click('#rotate')
  t.match(await admin.textContent('#signing-secret'), /^whsec_/)
  t.equal(await admin.$('#secret'), null, 'only the signing secret')
  await admin.goto(`${C}/users/carol`)
  await admin.fill('#email', 'carol.rotated@example.com')
  await admin.click('#save-user')
  await eventually('A to apply the change signed during the overlap', async () => (await accounts(urls.a)).includes('carol.rotated@example.com'))
  t.pass('A applied an event sent after the rotation')

  // A dead event: B is down, its events die; B back, the console replays one and B applies it.
  await fleet.stopApp('service-b')
  await admin.goto(`${C}/users/carol`)
  await admin.fill('#email', 'carol.replayed@example.com')
  await admin.click('#save-user')
  await eventually('the event to B to die', async () => {
    await admin.goto(`${C}/services/service-b`)
    return Number(await admin.textContent('#dead')) > 0
  })
  await fleet.start('service-b')
  t.notMatch(await accounts(urls.b), /carol\.replayed/, 'B missed it')
  await admin.goto(`${C}/services/service-b`)
  await admin.click('.replay-one >> nth=-1')
  t.match(await admin.textContent('.flash'), /1 event\(s\) queued again/)
  await eventually('B to apply the replayed event', async () => (await accounts(urls.b)).includes('carol.replayed@example.com'))
  t.pass('B applied the replayed event')

  // Revoke carol's session: A signs her out.
  await admin.goto(`${C}/sessions?user=carol`)
  await axe(admin, 'sessions')
  await admin.click('.revoke-session >> nth=0')
  t.match(await admin.textContent('.flash'), /Session ended/)
  await eventually('A to sign carol out', async () => {
    await carol.goto(`${urls.a}/private`)
    return !carol.url().startsWith(`${urls.a}/private`)
  })
  t.pass('A signed carol out')

  // A stale sign-in: the change is refused until the password is entered again.
  const store = new SqliteGatewayStore({ filename: join(dataDir, 'gateway.sqlite') })
  store.db.prepare("UPDATE gateway_sessions SET data = json_set(data, '$.authAt', 0)").run()
  await store.close()
  await admin.goto(`${C}/users/carol`)
  await admin.click('#toggle-active')
  await admin.waitForURL(`${C}/confirm?next=%2Fconsole%2Fusers%2Fcarol`)
  t.match(await admin.textContent('h1'), /Confirm your password/)
  await axe(admin, 'confirm')
  await admin.fill('#password', PASSWORD)
  await admin.click('button[type=submit]')
  await admin.waitForURL(`${C}/users/carol`)
  t.match(await admin.textContent('#toggle-active'), /Disable/, 'back on the page; carol was not disabled')
  await admin.click('#toggle-active')
  t.match(await admin.textContent('.flash'), /Disabled and signed out everywhere/)

  // The audit log names the admin for each change.
  await admin.goto(`${C}/audit?user=carol`)
  const log = await admin.textContent('table')
  for (const kind of ['user_created', 'group_member_added', 'user_updated', 'sso_session_ended']) t.match(log, kind)
  t.match(log, /admin:alice/)
  await axe(admin, 'audit')
  t.same([...checked].sort(), ['audit', 'confirm', 'groups', 'overview', 'refused', 'secrets', 'service', 'services', 'sessions', 'sign-in-first', 'user', 'users'], 'every console page checked')
})
