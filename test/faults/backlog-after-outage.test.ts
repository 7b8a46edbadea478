// Risk: a service that came back after an outage waited for the next scheduled retry (4-6 minutes
// at the 5-minute step) for its queued deauthenticate events, and signed-out users stayed signed in
// there. The gateway now probes it while events wait, and sends the backlog as soon as it answers.
// Real gateway and services, real SQLite files; the retry step here is a minute, so only the
// probe can bring the event within the 25 s this test waits.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startFleet } from '../../scripts/fleet.mjs'
import { outbox, waitFor } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-backlog'

t.test('service B back after an outage gets its waiting deauthenticate within seconds, not at the next retry', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sso-faults-backlog-'))
  const fleet = await startFleet({
    dataDir,
    password: PASSWORD,
    appEnv: { gateway: { RETRY_SCHEDULE: JSON.stringify([60_000, 300_000]), OUTBOX_INTERVAL: '100', EVENT_TIMEOUT: '1000' } }
  })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const db = join(dataDir, 'gateway.sqlite')
  const browser = new HttpBrowser()
  const form = await browser.go('GET', `${urls.a}/private`)
  await browser.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
  t.match((await browser.go('GET', `${urls.b}/account`)).body, /Signed in as <strong>alice<\/strong>/, 'signed in at B')

  await fleet.stopApp('service-b')
  const page = await browser.go('GET', `${urls.a}/`)
  await browser.go('POST', `${urls.a}/logout/`, { _csrf: HttpBrowser.csrf(page.body), scope: 'everywhere' })
  const toB = () => outbox(db, 'service-b').filter((r) => r.type === 'deauthenticate')
  await waitFor('a failed attempt to reach B', () => toB().length === 1 && toB()[0]!.attempts === 1)
  t.match(toB()[0], { status: 'pending', attempts: 1 }, 'waiting for its next attempt, a minute away')

  await fleet.start('service-b')
  await waitFor('B to get its backlog', () => toB()[0]!.status === 'delivered', 25_000)
  t.equal(toB()[0]!.attempts, 2, 'delivered by the attempt the probe brought forward')
  const after = await browser.send('GET', `${urls.b}/account`)
  t.equal(after.status, 302, 'the signed-out user is signed out at B too')
})
