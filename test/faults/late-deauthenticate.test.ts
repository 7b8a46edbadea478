// Risk: a late "sign out everywhere" ended sessions opened after it: with B's events delayed, the
// user signed out everywhere, signed in at B again, and the delayed deauthenticate ended the new
// session. Events now say when they were issued and B ends only sessions vouched for before.
// Real gateway and services; the event to B is held by a stand-in proxy until the new sign-in is done.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort, startFleet } from '../../scripts/fleet.mjs'
import { outbox, startStandIn, waitFor } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-late'

t.test('a delayed sign-out everywhere ends the old session at B and leaves the sign-in made after it', async (t) => {
  const ports = { gateway: await freePort(), a: await freePort(), b: await freePort() }
  const standIn = await startStandIn({ 'proxy-b': { mode: 'proxy', target: `http://127.0.0.1:${ports.b}/sso/event/`, hold: true } })
  t.teardown(standIn.stop)
  const dataDir = mkdtempSync(join(tmpdir(), 'sso-faults-late-'))
  const fleet = await startFleet({
    dataDir,
    password: PASSWORD,
    ports,
    eventUrls: { 'service-b': `${standIn.url}/proxy-b/sso/event/` },
    appEnv: { gateway: { OUTBOX_INTERVAL: '100', EVENT_TIMEOUT: '60000', RETRY_SCHEDULE: '[1000, 1000, 1000]' } }
  })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const db = join(dataDir, 'gateway.sqlite')

  // Laptop: signed in at A and B. The update_account of that sign-in is held by the proxy too.
  const laptop = new HttpBrowser()
  const form = await laptop.go('GET', `${urls.b}/account`)
  t.match((await laptop.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })).body, /Signed in as <strong>alice<\/strong>/)
  await standIn.release('proxy-b')
  await waitFor('B to take the sign-in event', () => outbox(db, 'service-b').every((r) => r.status === 'delivered'))
  await standIn.setMode('proxy-b', { mode: 'proxy', target: `http://127.0.0.1:${ports.b}/sso/event/`, hold: true })

  // Sign out everywhere (from A): the deauthenticate to B is held at the proxy.
  const laptopA = await laptop.go('GET', `${urls.a}/private`)
  await laptop.go('POST', `${urls.a}/logout/`, { _csrf: HttpBrowser.csrf(laptopA.body), scope: 'everywhere' })
  await waitFor('the deauthenticate to reach the proxy', async () => (await standIn.received('proxy-b')).some((r) => r.type === 'deauthenticate'))

  // Phone: signs in at B after the sign-out, while the sign-out is still on its way to B.
  const phone = new HttpBrowser()
  const phoneForm = await phone.go('GET', `${urls.b}/account`)
  t.match((await phone.go('POST', phoneForm.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(phoneForm.body) })).body, /Signed in as <strong>alice<\/strong>/, 'new sign-in at B')
  t.ok(outbox(db, 'service-b').some((r) => r.type === 'deauthenticate' && r.status === 'pending'), 'the sign-out has not reached B yet')

  await standIn.release('proxy-b')
  await waitFor('B to take the late sign-out', () => outbox(db, 'service-b').filter((r) => r.type === 'deauthenticate').every((r) => r.status === 'delivered'), 20_000)
  t.equal((await laptop.send('GET', `${urls.b}/account`)).status, 302, 'the laptop session (from before the sign-out) ended at B')
  const stillIn = await phone.send('GET', `${urls.b}/account`)
  t.equal(stillIn.status, 200, 'the phone session (signed in after it) survives the late event')
  t.match(stillIn.body, /Signed in as <strong>alice<\/strong>/)
})
