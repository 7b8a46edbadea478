// PostgreSQL unreachable for a gateway process, then back: sign-ins fail closed with a clear
// 503 page (the protocol with a JSON 503), nothing is half-written, and the same process works
// again once the database answers, without a restart.
//
// How the outage is made: the machine's PostgreSQL is shared with other tests and checkouts,
// so it is never stopped. The gateway reaches it through a TCP proxy of this test instead;
// cutting the proxy closes every connection the gateway holds and refuses new ones (closed at
// once), which is what the gateway sees when the database server goes away. Restoring it lets
// connections through again.
import t from 'tap'
import { request } from 'undici'
import { startFleet } from '../../scripts/fleet.mjs'
import { PostgresGatewayStore } from '../../packages/fastify-sso-gateway/src/index.js'
import { freshDatabase } from '../../packages/fastify-sso-gateway/test/pg-helpers.js'
import { FAST_GATEWAY_ENV, obtain, startStandIn, waitFor } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/temp.js'

const PASSWORD = 'faults-password-pg'

t.test('the database unreachable: a clear 503, nothing half-written, recovery without a restart', async (t) => {
  const database = await freshDatabase(t)
  const proxy = await startTcpProxy(5432)
  t.teardown(proxy.close)
  const throughProxy = database.replace('127.0.0.1:5432', `127.0.0.1:${proxy.port}`)
  const standIn = await startStandIn()
  t.teardown(standIn.stop)
  const svc = standIn.seed('svc')
  const fleet = await startFleet({
    dataDir: tempDir('sso-faults-pg-'),
    password: PASSWORD,
    apps: ['gateway'],
    extraServices: [svc],
    appEnv: { gateway: { ...FAST_GATEWAY_ENV, DATABASE_URL: throughProxy, BUSY_TIMEOUT: '3000' } }
  })
  t.teardown(fleet.stop)
  const gw = fleet.internal.gateway
  // The test reads the database directly, not through the proxy.
  const store = new PostgresGatewayStore({ connectionString: database, max: 2 })
  t.teardown(async () => { await store.close() })
  const alice = (await store.users.byUsername('alice'))!

  const token = await obtain(gw, svc.secret)
  const browser = new HttpBrowser()
  const form = await browser.send('GET', `${gw}/login/?sso=${encodeURIComponent(token)}`)
  t.equal(form.status, 200)

  await proxy.cut()
  const page = await browser.send('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
  t.equal(page.status, 503, 'the sign-in answers 503')
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /Temporarily unavailable/, 'a page that says what happened…')
  t.match(page.body, /temporarily unavailable\. Try again in a moment\./, '…and what to do')
  t.equal(page.headers['retry-after'], '5')
  t.notMatch(page.body, /at \w+ \(|ECONN|Connection terminated|127\.0\.0\.1/, 'no stack trace, no driver detail')

  const obtained = await request(`${gw}/sso/obtain/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: svc.secret, next_url: '/' }).toString()
  })
  t.equal(obtained.statusCode, 503, 'the protocol answers 503 too')
  t.same(await obtained.body.json(), { error: 'The sign-in service is temporarily unavailable, please retry', code: 'FST_SSO_GATEWAY_UNAVAILABLE' })
  const link = await browser.send('GET', form.url)
  t.equal(link.status, 503, 'the sign-in link (it reads the request) answers 503 as well')
  t.match(link.body, /Temporarily unavailable/)
  t.equal(fleet.procs.gateway!.exitCode, null, 'the gateway keeps running')

  // Nothing half-written: no session for alice, no event queued, the request still pending.
  t.same(await store.sessions.listByUser(alice.id, Date.now()), [], 'no gateway session')
  t.same(await store.outbox.list('pending', 10), [], 'no event queued')
  t.equal(await store.services.hasUser((await store.services.byName('svc'))!.id, alice.id), false, 'no sign-in recorded at the service')

  // Back: the same process, the same sign-in link, works.
  await proxy.restore()
  let again = await browser.send('GET', form.url)
  await waitFor('the gateway to reach the database again', async () => {
    again = await browser.send('GET', form.url)
    return again.status === 200
  }, 20_000)
  t.match(again.body, /type="password"/, 'the request was still pending: the form again')
  const done = await browser.send('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(again.body) })
  t.equal(done.status, 303, 'signed in')
  t.ok(String(done.headers.location).startsWith(`${svc.baseUrl}/sso/accept/?code=`), 'back to the service')
  await waitFor('update_account at the service', async () => (await standIn.received('svc')).some((r) => r.type === 'update_account'), 20_000)
  t.equal(fleet.procs.gateway!.exitCode, null, 'without a restart')
})
