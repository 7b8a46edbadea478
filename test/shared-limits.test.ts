import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { Agent, request } from 'undici'
import { freePort, startFleet } from '../scripts/fleet.mjs'
import { startExtra } from './helpers/extra-process.js'
import { HttpBrowser } from './helpers/http-browser.js'
import { randomPrefix, REDIS_URL, deleteKeys } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'
import { Redis } from 'ioredis'

// Two real gateway processes (examples/gateway, one SQLite file in WAL mode) with REDIS_URL:
// the per-address password throttle, the per-account lockout and the obtain budget are the
// configured ones in all, not once per process.

const PASSWORD = 'shared-limits-password-1'
const service = (name: string) => ({
  name,
  baseUrl: 'http://127.0.0.1:9',
  secret: randomBytes(32).toString('base64url'),
  signingSecret: 'whsec_' + randomBytes(32).toString('base64')
})

/** A client whose connections come from another loopback address (its own "IP" at the gateway). */
function from (localAddress: string): Agent {
  return new Agent({
    connect: (options, callback) => {
      const socket = connect({ host: options.hostname, port: Number(options.port), localAddress })
      socket.once('connect', () => { callback(null, socket) })
      socket.once('error', (err) => { callback(err, null) })
      return socket
    }
  })
}

t.test('two gateway processes on one Redis: throttle, lockout and obtain budget hold across them', async (t) => {
  const prefix = randomPrefix('fleet-limits')
  const redis = new Redis(REDIS_URL)
  t.teardown(async () => { await deleteKeys(redis, prefix); redis.disconnect() })
  const budget = service('budget')
  const raw = service('raw')
  const fleet = await startFleet({
    dataDir: tempDir('sso-shared-limits-'),
    password: PASSWORD,
    apps: ['gateway'],
    extraServices: [budget, raw],
    env: { REDIS_URL },
    appEnv: { gateway: { REDIS_PREFIX: prefix, GATEWAY_LOGIN_RATE_LIMIT: '14', OBTAIN_RATE_LIMIT: '2', RETRY_SCHEDULE: '[600000]' } }
  })
  t.teardown(fleet.stop)
  const port2 = await freePort()
  const second = await startExtra('gateway', { ...fleet.envOf('gateway'), PORT: String(port2) }, `http://127.0.0.1:${port2}/`)
  t.teardown(second.stop)
  const gateways = [fleet.urls.gateway, `http://127.0.0.1:${port2}`]

  t.test('per-address throttle: 14 password POSTs a minute from one address, in all', async (t) => {
    const agent = from('127.0.0.2')
    t.teardown(() => agent.close())
    const browser = new HttpBrowser(agent)
    // One form (one CSRF cookie in this browser) posted to either process: they share the secret.
    let page = await browser.send('GET', `${gateways[0] as string}/login/`)
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) {
      const res = await browser.send('POST', `${gateways[i % 2] as string}/login/`, { username: `nobody${i}`, password: 'x', _csrf: HttpBrowser.csrf(page.body) })
      statuses.push(res.status)
      if (res.status === 401) page = res
    }
    t.same(statuses.slice(0, 14), Array(14).fill(401), `14 passwords checked, in all (${statuses.join(' ')})`)
    t.same(statuses.slice(14), Array(6).fill(429), 'whichever process gets them')
  })

  t.test('lockout: ten failures through the two processes lock (account, address), even with the right password', async (t) => {
    const agent = from('127.0.0.3')
    t.teardown(() => agent.close())
    const browser = new HttpBrowser(agent)
    let page = await browser.send('GET', `${gateways[0] as string}/login/`)
    const statuses: number[] = []
    for (let i = 0; i < 11; i++) {
      const res = await browser.send('POST', `${gateways[i % 2] as string}/login/`, { username: 'alice', password: i === 10 ? PASSWORD : `guess ${i}`, _csrf: HttpBrowser.csrf(page.body) })
      statuses.push(res.status)
      page = res
    }
    t.same(statuses, [...Array(10).fill(401), 429])
    // alice from her own address is not locked out.
    const own = new HttpBrowser()
    const form = await own.send('GET', `${gateways[1] as string}/login/`)
    t.equal((await own.send('POST', `${gateways[1] as string}/login/`, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })).status, 303)
  })

  t.test('obtain budget: 2 sign-ins a minute per service, in all; raw obtains 10 × that, in all', async (t) => {
    const obtain = async (gateway: string, secret: string): Promise<{ status: number, token?: string }> => {
      const res = await request(`${gateway}/sso/obtain/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: secret, next_url: '/x' }).toString()
      })
      const body = await res.body.json() as { token?: string }
      return { status: res.statusCode, ...(body.token === undefined ? {} : { token: body.token }) }
    }
    const agent = from('127.0.0.4')
    t.teardown(() => agent.close())
    const browser = new HttpBrowser(agent)
    const first = await obtain(gateways[0] as string, budget.secret)
    const form = await browser.send('GET', `${gateways[0] as string}/login/?sso=${first.token as string}`)
    const signedIn = await browser.send('POST', `${gateways[0] as string}/login/?sso=${first.token as string}`, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
    t.equal(signedIn.status, 303, 'sign-in 1 through process 1')
    const next = await obtain(gateways[1] as string, budget.secret)
    const silent = await browser.send('GET', `${gateways[1] as string}/login/?sso=${next.token as string}`)
    t.equal(silent.status, 302, 'sign-in 2 through process 2: silent, the gateway session is shared')
    t.match(String(silent.headers.location), /^http:\/\/127\.0\.0\.1:9\/sso\/accept\//)
    t.equal((await obtain(gateways[0] as string, budget.secret)).status, 429, 'the budget of 2 is spent, at process 1')
    t.equal((await obtain(gateways[1] as string, budget.secret)).status, 429, 'and at process 2')

    let allowed = 0
    for (let i = 0; i < 24; i++) if ((await obtain(gateways[i % 2] as string, raw.secret)).status === 200) allowed++
    t.equal(allowed, 20, 'raw obtains: 20 in all (10 × 2), not 40')
  })
})
