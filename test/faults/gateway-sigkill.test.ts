// The gateway killed with SIGKILL in the middle of deliveries: after a restart every pending
// event is delivered, each at least once, with the same webhook-id, and the service applies
// each once. Real gateway and service-a processes, real SQLite files; a stand-in proxy in
// front of service-a's /sso/event/ slows deliveries down (so the kill lands mid-delivery)
// and records what went through.
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/temp.js'
import { request } from 'undici'
import { freePort, startFleet } from '../../scripts/fleet.mjs'
import { FAST_GATEWAY_ENV, obtain, outbox, signInAtGateway, startStandIn, waitFor } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-3'
const EVENTS = 12

t.test('SIGKILL during deliveries: after restart each pending event goes out, same id, applied once', async (t) => {
  const ports = { gateway: await freePort(), a: await freePort() }
  const standIn = await startStandIn({
    'proxy-a': { mode: 'proxy', target: `http://127.0.0.1:${ports.a}/sso/event/`, delay: 150 }
  })
  t.teardown(standIn.stop)
  const caller = standIn.seed('caller')
  const dataDir = tempDir('sso-faults-kill-')
  const fleet = await startFleet({
    dataDir,
    password: PASSWORD,
    ports,
    apps: ['gateway', 'service-a'],
    eventUrls: { 'service-a': `${standIn.url}/proxy-a/sso/event/` },
    extraServices: [caller],
    appEnv: { gateway: FAST_GATEWAY_ENV, 'service-a': { LOG_LEVEL: 'info' } }
  })
  t.teardown(fleet.stop)
  const gw = fleet.internal.gateway
  const db = join(dataDir, 'gateway.sqlite')
  const toA = () => outbox(db, 'service-a').filter((r) => r.type === 'deauthenticate')

  // alice signs in through the stand-in "caller", which may then report her logouts.
  const { page } = await signInAtGateway(new HttpBrowser(), gw, await obtain(gw, caller.secret), PASSWORD)
  t.equal(page.status, 303)
  // Each report queues a deauthenticate for service-a: EVENTS of them, delivered one by one (same user).
  const statuses: number[] = []
  for (let i = 0; i < EVENTS; i++) {
    const res = await request(`${gw}/sso/deauthenticate/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: caller.secret, user_identy: 'alice' }).toString()
    })
    statuses.push(res.statusCode)
    await res.body.dump()
  }
  t.same(statuses, statuses.map(() => 200), `${EVENTS} logouts reported`)
  await waitFor('a few deliveries', async () => (await standIn.received('proxy-a')).length >= 3)
  await fleet.stopApp('gateway', 'SIGKILL')
  t.equal(fleet.procs.gateway!.signalCode, 'SIGKILL')

  const atKill = toA()
  t.equal(atKill.length, EVENTS, 'every event was in the outbox before the kill')
  const pendingAtKill = atKill.filter((r) => r.status === 'pending')
  t.ok(pendingAtKill.length > 0, `${pendingAtKill.length} events pending at the kill`)

  const restarted = Date.now()
  await fleet.start('gateway')
  await waitFor('every event delivered after the restart', () => toA().every((r) => r.status === 'delivered'), 15_000)
  t.ok(Date.now() - restarted < 12_000, `all delivered ${Date.now() - restarted} ms after the restart`)

  const ids = atKill.map((r) => r.id)
  const through = await standIn.received('proxy-a')
  t.same(new Set(through.map((r) => r.id)), new Set(ids), 'exactly the outbox\'s events went out, under their own webhook-ids')
  t.same(pendingAtKill.filter((r) => !through.some((x) => x.id === r.id && x.at >= restarted)), [], 'every event pending at the kill was sent after the restart')
  const order = through.map((r) => ids.indexOf(r.id!))
  t.ok(order.every((n, i) => i === 0 || n >= order[i - 1]! - 1), `in order (a repeat of the one in flight allowed): ${order.join(',')}`)

  // service-a applied each event once: a repeat was acknowledged as a duplicate.
  const ok = through.filter((r) => r.answered === 200).length
  const log = (): string => fleet.procs['service-a']!.output ?? ''
  const count = (audit: string): number => log().split('\n').filter((l) => l.includes(`"audit":"${audit}"`)).length
  await waitFor('service-a\'s log', () => count('deauthenticate') + count('event_duplicate') >= ok, 3000).catch(() => {})
  t.equal(count('deauthenticate'), EVENTS, 'each event applied once')
  t.equal(count('event_duplicate'), ok - EVENTS, `${ok - EVENTS} repeated deliveries acknowledged without applying`)
})
