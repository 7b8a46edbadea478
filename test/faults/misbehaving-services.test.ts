// Services that hang, fail, throttle, refuse for good or redirect: each handled as issue 4
// says, and the sign-in page never waits longer than the inline timeout. Real gateway
// process, real SQLite file, a stand-in process playing the services.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir } from '../helpers/temp.js'
import { startFleet } from '../../scripts/fleet.mjs'
import { FAST_GATEWAY_ENV, obtain, outbox, signInAtGateway, startStandIn, waitFor, type OutboxRow } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-1'
const INLINE = Number(FAST_GATEWAY_ENV.INLINE_EVENT_TIMEOUT)
/** What a sign-in may take beyond the inline timeout: hashing the password and our own overhead. */
const SLACK = 1500

t.test('misbehaving services', async (t) => {
  const standIn = await startStandIn({
    'fs-hang': { mode: 'hang' },
    'fs-500': { mode: 'status', status: 500 },
    'fs-429': { mode: 'status', status: 429, retryAfter: 2 },
    'fs-410': { mode: 'status', status: 410 },
    'fs-redirect': { mode: 'redirect' },
    'dj-hang': { mode: 'hang' },
    'dj-500': { mode: 'status', status: 500 }
  })
  t.teardown(standIn.stop)
  const names = ['fs-hang', 'fs-500', 'fs-429', 'fs-410', 'fs-redirect', 'dj-hang', 'dj-500']
  const seeds = names.map((n) => standIn.seed(n, n.startsWith('dj-') ? 'django-sso' : 'fastify-sso'))
  const dataDir = tempDir('sso-faults-services-')
  const fleet = await startFleet({ dataDir, password: PASSWORD, apps: ['gateway'], extraServices: seeds, appEnv: { gateway: FAST_GATEWAY_ENV } })
  t.teardown(fleet.stop)
  const gw = fleet.urls.gateway
  const db = join(dataDir, 'gateway.sqlite')
  const secret = (name: string): string => standIn.seed(name).secret
  const rows = (name: string): OutboxRow[] => outbox(db, name)
  const only = (name: string): OutboxRow => {
    const r = rows(name)
    if (r.length !== 1) throw new Error(`${name}: expected one event, got ${JSON.stringify(r)}`)
    return r[0]!
  }

  /** Signs in through a fastify-sso stand-in: the browser must go back to it, in bounded time. */
  async function fastifySignIn (t: Test, name: string): Promise<void> {
    const { page, ms } = await signInAtGateway(new HttpBrowser(), gw, await obtain(gw, secret(name)), PASSWORD)
    t.equal(page.status, 303, `${name}: the sign-in completes`)
    t.ok(String(page.headers.location).startsWith(`${standIn.url}/${name}/sso/accept/?code=`), `${name}: back to the service`)
    t.ok(ms < INLINE + SLACK, `${name}: sign-in took ${ms} ms (inline timeout ${INLINE} ms)`)
  }

  // The five fastify-sso services, signed in to at once (as many browsers would).
  const fastifyOnes = names.filter((n) => n.startsWith('fs-'))
  await Promise.all(fastifyOnes.map(async (n) => await t.test(`sign-in through ${n}`, async (t) => await fastifySignIn(t, n))))

  await t.test('a hanging service: the attempt times out and is retried; the event stays queued', async (t) => {
    await waitFor('a timed-out attempt', () => only('fs-hang').attempts >= 1 && only('fs-hang').status === 'pending')
    t.match(only('fs-hang'), { status: 'pending', type: 'update_account', last_error: /abort|timeout/i })
    await waitFor('a retry', async () => (await standIn.received('fs-hang')).length >= 2, 6000)
    const got = await standIn.received('fs-hang')
    t.ok(got.every((r) => r.id === only('fs-hang').id), 'every attempt carries the same webhook-id')
  })

  await t.test('a 500 is retried with backoff until the service takes it', async (t) => {
    await waitFor('retries', async () => (await standIn.received('fs-500')).length >= 3, 5000)
    t.match(only('fs-500'), { status: 'pending', last_error: 'HTTP 500' })
    await standIn.setMode('fs-500', { mode: 'ok' })
    await waitFor('delivery', () => only('fs-500').status === 'delivered', 5000)
    const got = await standIn.received('fs-500')
    t.ok(new Set(got.map((r) => r.id)).size === 1 && got[0]!.id === only('fs-500').id, 'one event, the same id on every attempt')
    const gaps = got.slice(1).map((r, i) => r.at - got[i]!.at)
    // The schedule is 200, 400, 800 ms (±20 %): never sooner (later is fine on a busy machine).
    t.ok(gaps.every((g, i) => g >= [200, 400, 800, 1000][Math.min(i, 3)]! * 0.8 - 50), `retried no sooner than the schedule: ${gaps.join(', ')} ms`)
  })

  await t.test('a 429 with Retry-After: 2 is retried no sooner than two seconds later', async (t) => {
    await waitFor('the second attempt', async () => (await standIn.received('fs-429')).length >= 2, 5000)
    const [first, second] = await standIn.received('fs-429')
    t.ok(second!.at - first!.at >= 1900, `second attempt ${second!.at - first!.at} ms after the first (the schedule alone says 200 ms)`)
    await standIn.setMode('fs-429', { mode: 'ok' })
    await waitFor('delivery', () => only('fs-429').status === 'delivered', 5000)
    t.pass('delivered once the service takes it')
  })

  await t.test('a 410 is final: dead-lettered after one attempt, never retried', async (t) => {
    await waitFor('dead letter', () => only('fs-410').status === 'dead')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    t.match(only('fs-410'), { status: 'dead', attempts: 1, last_error: 'HTTP 410' })
    t.equal((await standIn.received('fs-410')).length, 1, 'one attempt only')
  })

  await t.test('a redirect is not followed: a failure, retried', async (t) => {
    await waitFor('a retry', async () => (await standIn.received('fs-redirect')).length >= 2, 5000)
    t.match(only('fs-redirect'), { status: 'pending', last_error: 'HTTP 302' })
    const all = await standIn.received()
    t.notOk(all.some((r) => r.service === 'fs-redirect' && r.path.startsWith('/elsewhere')), 'the redirect target was never called')
  })

  await t.test('a django-sso service that hangs: a clear page within the inline timeout, and a retry that works', async (t) => {
    const browser = new HttpBrowser()
    const token = await obtain(gw, secret('dj-hang'))
    const { page, ms } = await signInAtGateway(browser, gw, token, PASSWORD)
    t.ok(ms < INLINE + SLACK, `page after ${ms} ms`)
    t.equal(page.status, 503)
    t.match(page.body, /dj-hang is not reachable/)
    const retry = /href="([^"]*\/login\/\?sso=[^"]+)"/.exec(page.body)?.[1]
    t.ok(retry, 'a retry link')
    const retryUrl = new URL(retry!.replace(/&amp;/g, '&'), gw).href

    // Still unreachable: the same page again, and the link still works afterwards.
    const again = await browser.send('GET', retryUrl)
    t.equal(again.status, 503)
    t.match(again.body, /dj-hang is not reachable/)

    await standIn.setMode('dj-hang', { mode: 'ok' })
    await waitFor('the retry to go through', async () => {
      const p = await browser.send('GET', retryUrl)
      if (p.status === 503) return false
      t.equal(p.status, 302, 'signed in silently at the gateway: straight back to the service')
      t.equal(p.headers.location, `${standIn.url}/dj-hang/sso/accept/`)
      return true
    }, 8000)
    const got = await standIn.received('dj-hang')
    const delivered = rows('dj-hang').filter((r) => r.status === 'delivered').map((r) => r.id)
    t.ok(delivered.length >= 1, 'the account reached the service before the browser went back')
    t.same(rows('dj-hang').filter((r) => r.status !== 'delivered'), [], 'nothing left queued: earlier attempts went out first, in order')
    t.ok(delivered.every((id) => got.some((r) => r.id === id)))
  })

  await t.test('a django-sso service answering 500: the page, then a retry once it is back', async (t) => {
    const browser = new HttpBrowser()
    const { page, ms } = await signInAtGateway(browser, gw, await obtain(gw, secret('dj-500')), PASSWORD)
    t.equal(page.status, 503)
    t.ok(ms < INLINE + SLACK, `page after ${ms} ms`)
    t.match(page.body, /dj-500 is not reachable/)
    t.equal(page.headers['retry-after'], '5')
    const retryUrl = new URL(/href="([^"]*\/login\/\?sso=[^"]+)"/.exec(page.body)![1]!, gw).href
    await standIn.setMode('dj-500', { mode: 'ok' })
    const back = await browser.send('GET', retryUrl)
    t.equal(back.status, 302, 'the retry completes the sign-in at once')
    t.equal(back.headers.location, `${standIn.url}/dj-500/sso/accept/`)
    const events = rows('dj-500')
    t.same(events.map((r) => r.status), events.map(() => 'delivered'), 'the failed event and the new one both delivered')
    const got = (await standIn.received('dj-500')).filter((r) => r.mode === 'ok').map((r) => r.id)
    t.same(got, events.map((r) => r.id), 'in order: the earlier event first')
  })

  await t.test('a graceful stop with a delivery hanging: exits in time, nothing left claimed', async (t) => {
    const seen = (await standIn.received('fs-hang')).length
    await waitFor('an attempt in flight', async () => (await standIn.received('fs-hang')).length > seen, 5000)
    const started = Date.now()
    await fleet.stopApp('gateway', 'SIGTERM')
    t.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`)
    t.equal(fleet.procs.gateway!.exitCode, 0, 'a clean exit')
    const sqlite = (await import('../helpers/faults.js')).openSqlite(db, { readonly: true })
    const leased = sqlite.prepare("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND lease_until > ?").get(Date.now()) as { n: number }
    sqlite.close()
    t.equal(leased.n, 0, 'no event is left under a lease')
    t.equal(only('fs-hang').status, 'pending', 'the hanging service\'s event is still queued')
  })
})
