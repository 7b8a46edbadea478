import t from 'tap'
import { freePort, startFleet } from '../scripts/fleet.mjs'
import { startExtra } from './helpers/extra-process.js'
import { HttpBrowser } from './helpers/http-browser.js'
import { deleteKeys, randomPrefix, REDIS_URL, waitFor } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'
import { Redis } from 'ioredis'

// examples/service-a as TWO processes on one Redis session store (REDIS_URL). The gateway
// delivers service-a's events to process 2 only; the browser is served by process 1.

const PASSWORD = 'multi-service-password-1'

t.test('a deauthenticate delivered to one service process ends the session served by the other', async (t) => {
  const prefix = randomPrefix('fleet-service')
  const redis = new Redis(REDIS_URL)
  t.teardown(async () => { await deleteKeys(redis, prefix); redis.disconnect() })
  const port2 = await freePort()
  const fleet = await startFleet({
    dataDir: tempDir('sso-multi-service-'),
    password: PASSWORD,
    apps: ['gateway', 'service-a'],
    env: { REDIS_URL },
    appEnv: { 'service-a': { REDIS_PREFIX: prefix } },
    eventUrls: { 'service-a': `http://127.0.0.1:${port2}/sso/event/` }
  })
  t.teardown(fleet.stop)
  const second = await startExtra('service-a', { ...fleet.envOf('service-a'), PORT: String(port2) }, `http://127.0.0.1:${port2}/`)
  t.teardown(second.stop)
  const { urls } = fleet
  const a2 = `http://127.0.0.1:${port2}`

  const browser = new HttpBrowser()
  const form = await browser.go('GET', `${urls.a}/private`)
  t.ok(form.url.startsWith(`${urls.gateway}/login/?sso=`), 'process 1 sent the browser to the gateway')
  const landed = await browser.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
  t.equal(landed.url, `${urls.a}/private`)
  t.match(landed.body, /Signed in as <strong>alice<\/strong>/, 'signed in through process 1')
  const other = await browser.send('GET', `${a2}/private`)
  t.equal(other.status, 200, 'process 2 serves the same session (one store)')
  t.match(other.body, /Signed in as <strong>alice<\/strong>/)
  t.ok(await redis.scard(`${prefix}u:alice`) >= 1, 'the session is indexed by user in Redis')

  // Central logout at the gateway: its deauthenticate goes to process 2 only.
  const welcome = await browser.send('GET', `${urls.gateway}/welcome/`)
  const out = await browser.send('POST', `${urls.gateway}/logout/`, { _csrf: HttpBrowser.csrf(welcome.body) })
  t.ok(out.status < 400, `gateway logout answered ${out.status}`)
  await waitFor('process 1 to serve the browser signed out', async () => (await browser.send('GET', `${urls.a}/private`)).status === 302)
  t.match(String((await browser.send('GET', `${urls.a}/private`)).headers.location), /\/login\//, 'process 1 sends the browser to sign in again')
  t.equal(await redis.exists(`${prefix}u:alice`), 0, 'no session of alice is left in the store')
})
