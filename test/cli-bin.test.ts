// The real `sso-gateway` bin (dist/cli/bin.js, as npm links it) as a separate process: on a
// fresh SQLite file, and on the database of a running example gateway while it serves traffic.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startFleet } from '../scripts/fleet.mjs'
import { HttpBrowser } from './helpers/http-browser.js'
import { tempDir } from './helpers/temp.js'

const BIN = fileURLToPath(new URL('../packages/fastify-sso-gateway/dist/cli/bin.js', import.meta.url))
// Real processes (and a browser) on a machine shared with other test runs: a bound well above the usual run.
t.setTimeout(6 * 60_000)
const PASSWORD = 'cli-bin-test-password'

interface Run { code: number | null, out: string, err: string }

async function bin (args: string[], stdin = '', env: Record<string, string> = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += String(d) })
    child.stderr.on('data', (d) => { err += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }) })
    child.stdin.end(stdin)
  })
}

async function eventually (what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

t.test('the bin: help, exit codes, a user added through a pipe, JSON out', async (t) => {
  const db = join(tempDir('sso-cli-bin-'), 'gateway.sqlite')
  const help = await bin(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /Usage: sso-gateway <command>/)
  t.equal((await bin(['frobnicate', '--database', db])).code, 2, 'usage')
  const missing = await bin(['user', 'list', '--database', db])
  t.equal(missing.code, 3, 'no database')
  t.match(missing.err, /no database at/)
  t.equal((await bin(['migrate'], '', { SSO_DATABASE: db })).code, 0)
  const added = await bin(['user', 'add', 'alice', '--password-stdin', '--database', db], `${PASSWORD}\n`)
  t.equal(added.code, 0, added.err)
  t.equal((await bin(['user', 'add', 'alice', '--password-stdin', '--database', db], `${PASSWORD}\n`)).code, 1, 'refused: exists')
  const list = await bin(['user', 'list', '--json', '--database', db])
  t.match(JSON.parse(list.out), [{ username: 'alice', isActive: true }])
  t.notMatch(list.out + list.err + added.out + added.err, new RegExp(PASSWORD), 'the password is never printed')
})

t.test('commands on the database of a running gateway: the services hear of each change', async (t) => {
  const dataDir = tempDir('sso-cli-fleet-')
  const fleet = await startFleet({
    dataDir, password: PASSWORD, apps: ['gateway', 'service-a'], appEnv: { gateway: { OUTBOX_INTERVAL: '100', RETRY_SCHEDULE: '[100]' } }
  })
  t.teardown(fleet.stop)
  const db = join(dataDir, 'gateway.sqlite')
  const { urls } = fleet
  const signIn = async (browser: HttpBrowser): Promise<void> => {
    let page = await browser.go('GET', `${urls.a}/private`)
    if (/type="password"/.test(page.body)) page = await browser.go('POST', page.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(page.body) })
    t.equal(page.url, `${urls.a}/private`, 'signed in at service A')
  }
  const signedInAtA = async (browser: HttpBrowser): Promise<boolean> => (await browser.send('GET', `${urls.a}/private`)).status === 200

  // user disable while alice is signed in: A receives the events and signs her out.
  const browser = new HttpBrowser()
  await signIn(browser)
  const disabled = await bin(['user', 'disable', 'alice', '--database', db])
  t.equal(disabled.code, 0, disabled.err)
  await eventually('A to sign alice out', async () => !await signedInAtA(browser))
  t.pass('the running gateway delivered what the CLI queued')
  const refused = await browser.go('GET', `${urls.a}/private`)
  t.match(refused.body, /type="password"/, 'she is asked to sign in again')
  const again = await browser.go('POST', refused.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(refused.body) })
  t.equal(again.status, 401, 'a disabled user cannot sign in')
  t.equal((await bin(['user', 'enable', 'alice', '--database', db])).code, 0)

  // The signing secret rotates while A still has only the old one: events keep arriving (both signatures).
  const rotated = await bin(['service', 'rotate', 'service-a', '--only', 'signing', '--json', '--database', db])
  t.equal(rotated.code, 0, rotated.err)
  t.match(JSON.parse(rotated.out), { signingSecret: /^whsec_/, overlapUntil: Number })
  await signIn(browser)
  const sessions = JSON.parse((await bin(['sessions', 'list', 'alice', '--json', '--database', db])).out) as Array<{ id: string, services: string[] }>
  t.equal(sessions.length, 1)
  t.same(sessions[0]?.services, ['service-a'])
  const revoked = await bin(['sessions', 'revoke', 'alice', sessions[0]!.id, '--database', db])
  t.equal(revoked.code, 0, revoked.err)
  await eventually('A to end the revoked session', async () => !await signedInAtA(browser))
  t.pass('A verified the event signed during the overlap and signed alice out')
  const status = JSON.parse((await bin(['events', 'status', '--json', '--database', db])).out) as Array<{ dead: number }>
  t.ok(status.every((s) => s.dead === 0), 'no event died')
})
