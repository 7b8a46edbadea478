// A service that is down during a broadcast logout hears of it when it comes back, and the
// user's session there then ends. Real gateway and services, real SQLite files.
import { join } from 'node:path'
import t from 'tap'
import { tempDir } from '../helpers/temp.js'
import { startFleet } from '../../scripts/fleet.mjs'
import { FAST_GATEWAY_ENV, outbox, waitFor } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-2'

t.test('service B down during a broadcast logout: it gets the event once back, and the session there ends', async (t) => {
  const dataDir = tempDir('sso-faults-down-')
  const fleet = await startFleet({
    dataDir,
    password: PASSWORD,
    appEnv: { gateway: FAST_GATEWAY_ENV, 'service-b': { LOG_LEVEL: 'info' } }
  })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const db = join(dataDir, 'gateway.sqlite')
  const browser = new HttpBrowser()

  const form = await browser.go('GET', `${urls.a}/private`)
  const atA = await browser.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
  t.match(atA.body, /Signed in as <strong>alice<\/strong>/, 'signed in at A')
  const atB = await browser.go('GET', `${urls.b}/account`)
  t.match(atB.body, /Signed in as <strong>alice<\/strong>/, 'signed in at B (silently)')

  await fleet.stopApp('service-b')
  t.equal(fleet.procs['service-b']!.exitCode, 0, 'B stopped')

  // Log out at A: the gateway ends the session everywhere and queues deauthenticate for A and B.
  const page = await browser.go('GET', `${urls.a}/`)
  const out = await browser.go('POST', `${urls.a}/logout/`, { _csrf: HttpBrowser.csrf(page.body) })
  t.equal(out.status, 200)
  const deauthB = () => outbox(db, 'service-b').filter((r) => r.type === 'deauthenticate')
  await waitFor('failed attempts to reach B', () => deauthB().length === 1 && deauthB()[0]!.attempts >= 2)
  t.match(deauthB()[0], { status: 'pending', last_error: /ECONNREFUSED|connect|fetch failed|other side closed/i }, 'still queued, retried')
  await waitFor('A to hear of it', () => outbox(db, 'service-a').filter((r) => r.type === 'deauthenticate').every((r) => r.status === 'delivered'))

  // B comes back with the same port and database: the event arrives and ends the session.
  await fleet.start('service-b')
  await waitFor('B to get the event', () => deauthB()[0]!.status === 'delivered', 8000)
  const bAfter = await browser.send('GET', `${urls.b}/account`)
  t.equal(bAfter.status, 302, 'B\'s session is gone: back to sign-in')
  t.match(bAfter.headers.location, /^\/login\/\?next=/)
  // The log line comes through a pipe: wait for it rather than race it.
  const log = (): string => fleet.procs['service-b']!.output ?? ''
  await waitFor('B\'s audit line', () => /"audit":"deauthenticate"/.test(log()), 3000).catch(() => {})
  t.match(log(), /"audit":"deauthenticate"[^\n]*"sessionsEnded":1/, 'B ended the one session it had for alice')
  t.equal(deauthB().length, 1, 'one event, delivered once it could be')
})
