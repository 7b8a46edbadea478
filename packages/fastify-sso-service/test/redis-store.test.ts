import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Session } from 'fastify'
import { RedisServiceStore, type RedisClient } from '../src/index.js'
import { resolveOptions } from '../src/options.js'
import { testRedis, TcpProxy, waitFor } from '../../../test/helpers/redis.js'
import { audits, Browser, buildApp, GATEWAY, sendEvent, SERVICE_TOKEN, SESSION_SECRET, signIn, SIGNING_SECRET } from './helpers.js'

// Risk: a service app running as several processes kept its sessions per process, so a
// deauthenticate that reached one process left the user signed in at the others.

const base = { gatewayUrl: GATEWAY, token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET, database: ':memory:' }

t.test('two app instances on one Redis: a deauthenticate received by one ends the session served by the other', async (t) => {
  const { redis, prefix } = testRedis(t, 'svc')
  const one = await buildApp(t, { store: { redis, prefix } })
  const two = await buildApp(t, { store: { redis, prefix } })
  const browser = new Browser(one.app)
  const landed = await signIn(browser, one.gateway, { username: 'alice' })
  t.equal(landed.statusCode, 302)
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'signed in at instance one')
  t.match((await browser.request('/sso/test/')).body, /alice/)
  t.equal(await redis.scard(`${prefix}u:alice`), 1, 'indexed by user in Redis')

  const res = await sendEvent(two.app, { type: 'deauthenticate', username: 'alice' }, { id: 'msg_deauth_1' })
  t.equal(res.statusCode, 200)
  t.equal(audits(two.logs, 'deauthenticate')[0]?.sessionsEnded, 1, 'instance two ended the session it does not serve')
  const after = await browser.request('/sso/test/')
  t.notMatch(after.body, /Signed in as/, 'instance one serves the browser signed out')
  t.equal(await redis.exists(`${prefix}u:alice`), 0, 'the index is empty')

  const dup = await sendEvent(one.app, { type: 'deauthenticate', username: 'alice' }, { id: 'msg_deauth_1' })
  t.equal(dup.statusCode, 200)
  t.equal(audits(one.logs, 'event_duplicate').length, 1, 'the event id is known to every instance: applied once')
})

t.test('accounts and versions are shared: an update_account at one instance is what a sign-in at the other falls back to', async (t) => {
  const { redis, prefix } = testRedis(t, 'svc')
  const one = await buildApp(t, { store: { redis, prefix } })
  const two = await buildApp(t, { store: { redis, prefix } })
  const now = Math.floor(Date.now() / 1000)
  t.equal((await sendEvent(one.app, { type: 'update_account', username: 'bob', is_active: true, is_staff: true, is_superuser: false }, { timestamp: now })).statusCode, 200)
  t.equal((await sendEvent(two.app, { type: 'update_account', username: 'bob', is_active: true, is_staff: false, is_superuser: false }, { timestamp: now - 10 })).statusCode, 200)
  t.equal(audits(two.logs, 'event_stale').length, 1, 'the older update at the other instance is ignored')
  const browser = new Browser(two.app)
  await signIn(browser, two.gateway, { username: 'bob', user: null })
  t.match((await browser.request('/sso/test/')).body, /bob/)
  const stored = JSON.parse(await redis.get(`${prefix}ac:bob`) as string) as { is_staff: boolean }
  t.equal(stored.is_staff, true, 'the flags the first instance stored')
})

t.test('the store and limits options are checked at register; the default prefix is per service', async (t) => {
  const { redis } = testRedis(t)
  for (const [name, value, pattern] of [
    ['store', 5, /"store"|store/],
    ['store', { redis: {} }, /store\.redis/],
    ['store', { redis, prefix: 7 }, /store\.prefix/],
    ['store', { redis, timeout: 0 }, /store\.timeout/],
    ['store', { redis, extra: 1 }, /store\.extra/],
    ['limits', 'redis://x', /limits/],
    ['limits', { redis: null }, /limits\.redis/]
  ] as const) {
    t.throws(() => resolveOptions({ ...base, [name]: value } as never), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: pattern }, `${name}: ${String(pattern)}`)
  }
  const file = join(t.testdir(), 'never.sqlite')
  await buildApp(t, { store: { redis, prefix: 'unused:' }, database: file })
  t.equal(existsSync(file), false, 'with a Redis store the SQLite file is not opened')
  const resolved = resolveOptions({ ...base, store: { redis } })
  t.match(resolved.store?.prefix, /^sso:service:[0-9a-f]{12}:$/)
  t.equal(resolved.store?.timeout, 2000)
  const other = resolveOptions({ ...base, token: 'another-service-token-0123456789abcdef', store: { redis } })
  t.not(other.store?.prefix, resolved.store?.prefix, 'two services on one Redis never share keys')
  t.equal(resolveOptions({ ...base, store: { redis } }).store?.prefix, resolved.store?.prefix, 'every process of one service: the same')
})

t.test('Redis down: pages serve the browser anonymous, events get a 503, the login throttle fails closed; all recover without a restart', async (t) => {
  const proxy = new TcpProxy()
  await proxy.start()
  t.teardown(async () => { await proxy.cut() })
  const { prefix } = testRedis(t, 'svc-outage')
  const client = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  const { app, gateway, logs } = await buildApp(t, { store: { redis: client, prefix, timeout: 500 }, limits: { redis: client, prefix: `${prefix}limits:`, timeout: 500 } })
  const browser = new Browser(app)
  await signIn(browser, gateway, { username: 'carol' })
  t.match((await browser.request('/sso/test/')).body, /carol/)

  await proxy.cut()
  const page = await browser.request('/sso/test/')
  t.notMatch(page.body, /Signed in as/, 'the session cannot be read: anonymous (fail closed), no crash')
  const login = await new Browser(app).request('/login/')
  t.equal(login.statusCode, 503, 'no sign-in started while the throttle cannot count')
  t.match(login.body, /cannot check its sign-in limits/)
  t.ok(Number(login.headers['retry-after']) > 0)
  const event = await sendEvent(app, { type: 'deauthenticate', username: 'carol' })
  t.equal(event.statusCode, 503, 'the gateway is told to retry the event')
  t.equal(event.json().code, 'FST_SSO_SERVICE_DATABASE_UNAVAILABLE')
  t.ok(logs.some((l) => /limits store did not answer/.test(String(l.msg))))

  await proxy.restore()
  // The browser's cookie was dropped while its session could not be read (as with SQLite): it
  // signs in again (silently, in real life, through its live gateway session).
  const back = new Browser(app)
  await waitFor('Redis back', async () => !/cannot check its sign-in limits/.test((await app.inject({ url: '/login/', remoteAddress: '198.51.100.9' })).body))
  await signIn(back, gateway, { username: 'carol', token: 'request-token-2' })
  t.match((await back.request('/sso/test/')).body, /carol/, 'signed in again without a restart')
  const again = await sendEvent(app, { type: 'deauthenticate', username: 'carol' })
  t.equal(again.statusCode, 200, 'events are applied again')
  t.notMatch((await back.request('/sso/test/')).body, /Signed in as|"user"/)
})

t.test('a session or account changed between read and write is read again (compare and set)', async (t) => {
  const { redis, prefix } = testRedis(t, 'svc-cas')
  let interfere: (() => Promise<void>) | null = null
  // A client that lets another writer in just before the first compare-and-set.
  const racing: RedisClient = {
    eval: async (script, numKeys, ...args) => {
      const hook = interfere
      if (hook !== null && /expected|ARGV\[1\] then return 0|~= ARGV\[1\]/.test(script)) {
        interfere = null
        await hook()
      }
      return await redis.eval(script, numKeys, ...args)
    }
  }
  const store = new RedisServiceStore({ redis: racing, prefix })
  const plain = new RedisServiceStore({ redis, prefix })
  const index = { user: 'alice', ssoSession: null, expiresAt: Date.now() + 60_000 }
  await plain.set('s1', { user: 'alice', n: 1 } as unknown as Session, index)
  interfere = async () => { await plain.set('s1', { user: 'alice', n: 2 } as unknown as Session, index) }
  t.equal(await store.rekeyUser('alice', 'alicia'), 1)
  t.same(await plain.get('s1', Date.now()), { user: 'alicia', n: 2 }, 'the concurrent write is kept and moved')

  await plain.rememberAccount('bob', { username: 'bob', is_active: true, is_staff: false, is_superuser: false })
  interfere = async () => { await plain.rememberAccount('bob', { username: 'bob', is_active: true, is_staff: true, is_superuser: false }) }
  await store.renameAccount('bob', 'robert')
  t.same(await plain.lastAccount('robert'), { username: 'robert', is_active: true, is_staff: true, is_superuser: false }, 'the newer account moved')
  t.equal(await plain.lastAccount('bob'), null)
})

t.test('a Redis that does not answer in time is a 503 error, not a hang', async (t) => {
  const store = new RedisServiceStore({ redis: { eval: async () => await new Promise(() => {}) }, timeout: 30 })
  await t.rejects(store.get('x', Date.now()), { code: 'FST_SSO_SERVICE_DATABASE_UNAVAILABLE', statusCode: 503 })
  t.equal(await store.prune(), 0, 'Redis expires keys itself')
})

t.test('keep-alive: an SSO session ended at the gateway while the store cannot delete is logged, the process lives on', async (t) => {
  const { redis, prefix } = testRedis(t, 'svc-keepalive')
  let failEnds = false
  const flaky: RedisClient = {
    eval: async (script, numKeys, ...args) => {
      if (failEnds && script.includes("mode == 's'")) throw new Error('Redis went away')
      return await redis.eval(script, numKeys, ...args)
    }
  }
  const { app, gateway, logs } = await buildApp(t, { keepAliveInterval: 100, store: { redis: flaky, prefix } })
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: 'gw-9' })
  gateway.intercept({ path: '/sso/touch/', method: 'POST' }).reply(404, { error: 'This SSO session has ended', code: 'FST_SSO_GATEWAY_UNKNOWN_SSO_SESSION' })
  failEnds = true
  await waitFor('the keep-alive to run', async () => {
    await browser.request('/sso/test/')
    return logs.some((l) => /could not be deleted here/.test(String(l.msg)))
  }, 5000)
  t.equal((await app.inject('/sso/test/')).statusCode, 302, 'the app still answers')
})
