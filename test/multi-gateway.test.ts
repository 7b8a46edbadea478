// Two gateway processes (examples/gateway with DATABASE_URL) on one PostgreSQL database, behind
// a small TCP load balancer the test steers: what one process starts, the other continues; a
// logout at one reaches every service; a backlog is drained by both, each event once and in
// order per (service, user); a process killed mid-delivery leaves nothing undelivered.
import t from 'tap'
import { startFleet } from '../scripts/fleet.mjs'
import { PostgresGatewayStore } from '../packages/fastify-sso-gateway/src/index.js'
import { freshDatabase } from '../packages/fastify-sso-gateway/test/pg-helpers.js'
import { FAST_GATEWAY_ENV, startStandIn, waitFor, type Received } from './helpers/faults.js'
import { HttpBrowser } from './helpers/http-browser.js'
import { startTcpProxy } from './helpers/tcp-proxy.js'
import { tempDir } from './helpers/temp.js'

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

t.test('two gateway processes on one PostgreSQL: sessions shared, a logout at one reaches every service', async (t) => {
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
  const browser = new HttpBrowser()

  // Through process 1: the form, the password, back at A signed in.
  await lb.retarget(portOf(one))
  const form = await browser.go('GET', `${urls.a}/private`)
  t.ok(form.url.startsWith(`${gateway}/login/?sso=`), 'A sent the browser to the gateway')
  const landed = await browser.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
  t.equal(landed.url, `${urls.a}/private`)
  t.match(landed.body, /Signed in as <strong>alice<\/strong>/)
  t.ok((lb.connections.get(portOf(one)) ?? 0) > 0 && lb.connections.get(portOf(two)) === undefined, 'process 1 served all of it')

  // Process 1 goes away for good; process 2 knows the gateway session: B signs in silently.
  await lb.retarget(portOf(two))
  await fleet.stopApp('gateway')
  const atB = await browser.go('GET', `${urls.b}/account`)
  t.equal(atB.url, `${urls.b}/account`)
  t.match(atB.body, /Signed in as <strong>alice<\/strong>/)
  t.ok(atB.chain.some((u) => u.startsWith(`${gateway}/login/?sso=`)), 'through the gateway…')
  t.notMatch(atB.body, /type="password"/, '…without a password: the session made by process 1 is read by process 2')
  t.ok((lb.connections.get(portOf(two)) ?? 0) > 0, 'process 2 served it')
  const welcome = await browser.send('GET', `${gateway}/welcome/`)
  t.match(welcome.body, /alice/, 'process 2 shows who is signed in')

  // Process 1 back; the logout goes to it and reaches both services.
  await fleet.start('gateway')
  await lb.retarget(portOf(one))
  const logoutForm = await browser.send('GET', `${gateway}/logout/`)
  const out = await browser.send('POST', `${gateway}/logout/`, { _csrf: HttpBrowser.csrf(logoutForm.body) })
  t.equal(out.status, 200, 'signed out at process 1')
  await waitFor('A to hear of the logout', async () => (await browser.send('GET', `${urls.a}/private`)).status === 302, 20_000)
  await waitFor('B to hear of the logout', async () => (await browser.send('GET', `${urls.b}/account`)).status === 302, 20_000)
  await lb.retarget(portOf(two))
  t.match((await browser.send('GET', `${gateway}/welcome/`)).body, /Nobody is signed in/, 'process 2 agrees: nobody is signed in')
  const again = await browser.go('GET', `${urls.a}/private`)
  t.match(again.body, /type="password"/, 'a new sign-in asks for the password')
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
