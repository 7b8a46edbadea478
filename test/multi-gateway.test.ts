// Two gateway processes (examples/gateway with DATABASE_URL) on one PostgreSQL database, behind
// a small TCP load balancer the test steers: what one process starts, the other continues; a
// logout at one reaches every service; a backlog is drained by both, each event once and in
// order per (service, user); a process killed mid-delivery leaves nothing undelivered.
import t from 'tap'
import { startFleet } from '../scripts/fleet.mjs'
import { PostgresGatewayStore } from '../packages/fastify-sso-gateway/src/index.js'
import { freshDatabase } from '../packages/fastify-sso-gateway/test/pg-helpers.js'
import { FAST_GATEWAY_ENV, startStandIn, waitFor, type Received } from './helpers/faults.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'
import { tempDir } from './helpers/temp.js'
import { launchChromium, requireChromium } from './helpers/chromium.js'

// Three tests of several real processes each, the 1,000-event drain among them: room on a busy machine.
t.setTimeout(6 * 60_000)

const PASSWORD = 'multi-gateway-password-1'
const portOf = (url: string): number => Number(new URL(url).port)

/** Received event ids per user key, in arrival order (ids are `<user>:<n>`). */
function perUser (received: Received[]): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const r of received) {
    const [user, n] = String(r.id).split(':') as [string, string]
    out.set(user, [...(out.get(user) ?? []), Number(n)])
  }
  return out
}

/** Events for `users` users, `each` per user, interleaved as a busy gateway would queue them. */
function backlog (serviceId: string, users: number, each: number): Array<{ id: string, serviceId: string, userKey: string, payload: string }> {
  const events = []
  for (let n = 0; n < each; n++) {
    for (let u = 0; u < users; u++) {
      events.push({ id: `u${u}:${n}`, serviceId, userKey: `u${u}`, payload: JSON.stringify({ type: 'update_account', username: `u${u}`, n }) })
    }
  }
  return events
}

t.test('two gateway processes on one PostgreSQL: a browser signs in through one and continues through the other; a logout at one reaches every service', async (t) => {
  requireChromium()
  const database = await freshDatabase(t)
  const lb = await startTcpProxy(1)
  t.teardown(lb.close)
  const fleet = await startFleet({
    dataDir: tempDir('sso-multi-gateway-'),
    password: PASSWORD,
    gateways: 2,
    gatewayUrl: `http://127.0.0.1:${lb.port}`,
    appEnv: { gateway: { DATABASE_URL: database, ...FAST_GATEWAY_ENV } }
  })
  t.teardown(fleet.stop)
  const [one, two] = fleet.gateways as [string, string]
  const gateway = `http://127.0.0.1:${lb.port}`
  const { urls } = fleet
  const browser = await launchChromium(t)
  const page = await (await browser.newContext()).newPage()
  page.setDefaultTimeout(20_000)

  // Through process 1: the form, the password, back at A signed in.
  await lb.retarget(portOf(one))
  await page.goto(`${urls.a}/private`)
  t.ok(page.url().startsWith(`${gateway}/login/?sso=`), 'A sent the browser to the gateway')
  await page.fill('#username', 'alice')
  await page.fill('#password', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(`${urls.a}/private`)
  t.match(await page.textContent('#who'), /Signed in as alice/)
  t.ok((lb.connections.get(portOf(one)) ?? 0) > 0 && lb.connections.get(portOf(two)) === undefined, 'process 1 served all of it')

  // Process 1 goes away; process 2 knows the gateway session: B signs in silently.
  await lb.retarget(portOf(two))
  await fleet.stopApp('gateway')
  await page.goto(`${urls.b}/account`)
  await page.waitForURL(`${urls.b}/account`)
  t.match(await page.textContent('#who'), /Signed in as alice/, 'B signed in through process 2 without a password: it read the session process 1 made')
  t.ok((lb.connections.get(portOf(two)) ?? 0) > 0, 'process 2 served it')

  // Process 1 back; the logout goes to it and reaches both services.
  await fleet.start('gateway')
  await lb.retarget(portOf(one))
  await page.goto(`${gateway}/logout/`)
  await page.click('#logout')
  await page.waitForLoadState()
  const signedOut = async (url: string): Promise<boolean> => {
    await page.goto(url)
    return /Not signed in/.test(await page.textContent('#who') ?? '')
  }
  await waitFor('A to hear of the logout', async () => await signedOut(`${urls.a}/`), 20_000)
  await waitFor('B to hear of the logout', async () => await signedOut(`${urls.b}/`), 20_000)
  t.pass('a logout at process 1 ended the sessions at A and B')
  await lb.retarget(portOf(two))
  await page.goto(`${gateway}/welcome/`)
  t.match(await page.content(), /Nobody is signed in/, 'process 2 agrees: nobody is signed in')
  await page.goto(`${urls.a}/private`)
  t.ok(await page.isVisible('#password'), 'a new sign-in asks for the password')
})

t.test('a backlog of 1,000 events is drained by both processes, each event once, in order per (service, user)', async (t) => {
  const database = await freshDatabase(t)
  const standIn = await startStandIn()
  t.teardown(standIn.stop)
  const svc = standIn.seed('drain')
  const fleet = await startFleet({
    dataDir: tempDir('sso-multi-drain-'),
    password: PASSWORD,
    apps: ['gateway'],
    gateways: 2,
    extraServices: [svc],
    // Default event timeout (10 s): no attempt is cut short on a busy machine, so none is sent twice.
    appEnv: { gateway: { DATABASE_URL: database, OUTBOX_INTERVAL: '100', LOG_LEVEL: 'info' } }
  })
  t.teardown(fleet.stop)
  const store = new PostgresGatewayStore({ connectionString: database, max: 2 })
  t.teardown(async () => { await store.close() })
  const service = (await store.services.byName('drain'))!

  await store.outbox.enqueue(backlog(service.id, 50, 20))
  await waitFor('1,000 deliveries', async () => (await standIn.received('drain')).length >= 1000, 120_000)
  await waitFor('the outbox to be drained', async () => (await store.outbox.status()).length === 0, 20_000)
  const received = await standIn.received('drain')
  t.equal(received.length, 1000, 'no event delivered twice')
  t.equal(new Set(received.map((r) => r.id)).size, 1000, 'every event delivered')
  const ordered = [...perUser(received).values()].every((ns) => ns.every((n, i) => n === i))
  t.ok(ordered, 'each user\'s events arrived in the order they were queued')
  for (const name of ['gateway', 'gateway-2'] as const) {
    t.match(fleet.procs[name]?.output ?? '', /"audit":"event_delivered"/, `${name} delivered some of them`)
  }
})

t.test('a process killed mid-delivery: the other takes over its leases, no event is lost, order is kept', async (t) => {
  const database = await freshDatabase(t)
  const standIn = await startStandIn({ kill: { mode: 'slow', delay: 200 } })
  t.teardown(standIn.stop)
  const svc = standIn.seed('kill')
  const fleet = await startFleet({
    dataDir: tempDir('sso-multi-kill-'),
    password: PASSWORD,
    apps: ['gateway'],
    gateways: 2,
    extraServices: [svc],
    appEnv: { gateway: { DATABASE_URL: database, ...FAST_GATEWAY_ENV } }
  })
  t.teardown(fleet.stop)
  const store = new PostgresGatewayStore({ connectionString: database, max: 2 })
  t.teardown(async () => { await store.close() })
  const service = (await store.services.byName('kill'))!

  await store.outbox.enqueue(backlog(service.id, 20, 10))
  await waitFor('deliveries under way', async () => (await standIn.received('kill')).length >= 30, 60_000)
  await fleet.stopApp('gateway', 'SIGKILL')
  await standIn.setMode('kill', { mode: 'ok' })
  await waitFor('every event delivered', async () => (await store.outbox.status()).length === 0, 60_000)
  const received = await standIn.received('kill')
  t.equal(new Set(received.map((r) => r.id)).size, 200, 'all 200 events reached the service')
  t.equal((await store.outbox.list('delivered', 1000)).length, 200, 'and are marked delivered')
  // An event the killed process had sent but not yet recorded goes out again (same webhook-id,
  // which the service ignores); nothing ever overtakes an earlier event of the same user.
  const inOrder = [...perUser(received).values()].every((ns) => ns.filter((n, i) => i === 0 || n !== ns[i - 1]).every((n, i) => n === i))
  t.ok(inOrder, 'per user: in order, a repeat only right after itself')
  t.ok(received.length - 200 <= 64, `${received.length - 200} repeats at most one claim's worth`)
})
