// The gateway killed (SIGKILL) while browsers sign out: each sign-out is whole or not at all.
// After the restart, every browser whose gateway session is gone has its `deauthenticate` for
// that SSO session in the outbox (so the service will hear of it), and every browser still
// signed in has none. Real gateway process, real SQLite file, a stand-in service.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { startFleet } from '../../scripts/fleet.mjs'
import { FAST_GATEWAY_ENV, obtain, openSqlite, signInAtGateway, startStandIn } from '../helpers/faults.js'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-signout'
const BROWSERS = 16

t.test('SIGKILL during sign-outs: each browser is signed out with its event, or not at all', async (t) => {
  const standIn = await startStandIn({ svc: { mode: 'hang' } })
  t.teardown(standIn.stop)
  const svc = standIn.seed('svc')
  const dataDir = mkdtempSync(join(tmpdir(), 'sso-faults-signout-'))
  const fleet = await startFleet({ dataDir, password: PASSWORD, apps: ['gateway'], extraServices: [svc], appEnv: { gateway: FAST_GATEWAY_ENV } })
  t.teardown(fleet.stop)
  const gw = fleet.internal.gateway

  // Each browser signs in to svc (its own SSO session, learnt as svc would from /sso/get/).
  const browsers: Array<{ browser: HttpBrowser, sso: string, csrf: string }> = []
  for (let i = 0; i < BROWSERS; i++) {
    const browser = new HttpBrowser()
    const token = await obtain(gw, svc.secret)
    const { page } = await signInAtGateway(browser, gw, token, PASSWORD)
    t.equal(page.status, 303)
    const code = new URL(String(page.headers.location)).searchParams.get('code') ?? ''
    const got = await request(`${gw}/sso/get/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: svc.secret, authentication_token: token, code }).toString()
    })
    const { sso_session: sso } = await got.body.json() as { sso_session: string }
    const confirm = await browser.send('GET', `${gw}/logout/`)
    browsers.push({ browser, sso, csrf: HttpBrowser.csrf(confirm.body) })
  }

  // All sign out at once; the gateway is killed as soon as the first one is answered.
  const outcomes = browsers.map(async ({ browser, csrf }) =>
    await browser.send('POST', `${gw}/logout/`, { _csrf: csrf, scope: 'session' }).then((p) => p.status, () => 'cut'))
  await Promise.race(outcomes)
  await fleet.stopApp('gateway', 'SIGKILL')
  const statuses = await Promise.all(outcomes)
  await fleet.start('gateway')

  const db = openSqlite(join(dataDir, 'gateway.sqlite'), { readonly: true })
  const told = new Set((db.prepare(`SELECT json_extract(payload, '$.sso_session') AS sso FROM outbox
    WHERE json_extract(payload, '$.type') = 'deauthenticate'`).all() as Array<{ sso: string | null }>).map((r) => r.sso))
  db.close()
  let signedOut = 0
  for (const [i, { browser, sso }] of browsers.entries()) {
    const welcome = await browser.send('GET', `${gw}/welcome/`)
    const gone = /Nobody is signed in/.test(welcome.body)
    if (gone) signedOut++
    t.equal(told.has(sso), gone, `browser ${i} (${String(statuses[i])}): ${gone ? 'signed out, and svc will be told' : 'still signed in, and svc is told nothing'}`)
  }
  t.ok(signedOut >= 1, `${signedOut} of ${BROWSERS} sign-outs done before the kill`)
  t.equal(told.size, signedOut, 'no event for a sign-out that did not happen')
})
