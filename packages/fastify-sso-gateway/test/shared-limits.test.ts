import t from 'tap'
import { Redis } from 'ioredis'
import { MemoryLimitStore, type LimitStore } from '../src/index.js'
import { resolveOptions } from '../src/options.js'
import { testRedis, TcpProxy, waitFor } from '../../../test/helpers/redis.js'
import { Browser, buildApp, call, logLines, PASSWORD, seed, SESSION_SECRET, signIn } from './helpers.js'

// Risk: the sign-in throttle, the per-account lockout and the obtain budget were counted in each
// process's memory, so N gateway processes allowed N times every budget. With `limits: { redis }`
// every process counts in one place; when that place cannot answer, nothing gets through.

/** A LimitStore whose calls fail for keys that start with `failing` (all keys by default). */
function broken (failing = '', inner: LimitStore = new MemoryLimitStore()): LimitStore {
  const fail = async (key: string): Promise<void> => { if (key.startsWith(failing)) throw new Error('store down') }
  return {
    hit: async (key, windowMs) => { await fail(key); return await inner.hit(key, windowMs) },
    peek: async (key) => { await fail(key); return await inner.peek(key) },
    reset: async (key) => { await fail(key); await inner.reset(key) }
  }
}

t.test('two gateways on one Redis: the lockout and the per-address throttle hold across them', async (t) => {
  const { redis, prefix } = testRedis(t, 'gw')
  const file = `${t.testdir()}/gateway.sqlite`
  const one = await buildApp({ database: file, store: undefined, limits: { redis, prefix }, loginRateLimit: { max: 14, timeWindow: 60_000 } }, { trustProxy: true })
  t.teardown(() => one.app.close())
  await seed(one.app, one.agent)
  const two = await buildApp({ database: file, store: undefined, limits: { redis, prefix }, loginRateLimit: { max: 14, timeWindow: 60_000 } }, { trustProxy: true })
  t.teardown(() => two.app.close())
  const apps = [one.app, two.app]
  const address = { 'x-forwarded-for': '203.0.113.7' }
  const pages = apps.map((app) => new Browser(app, address))
  let forms = await Promise.all(pages.map(async (b) => await b.request('GET', '/login/')))
  const statuses: number[] = []
  for (let i = 0; i < 11; i++) {
    const k = i % 2
    const res = await (pages[k] as Browser).request('POST', '/login/', { username: 'alice', password: i === 10 ? PASSWORD : `guess ${i}`, _csrf: Browser.csrf((forms[k] as { body: string }).body) })
    statuses.push(res.statusCode)
    forms[k] = res
  }
  t.same(statuses, [...Array(10).fill(401), 429], 'ten failures across the two processes lock the pair, even with the right password')
  const ttl = await redis.pttl(`${prefix}fail:alice\u0000203.0.113.7`)
  t.ok(ttl > 0 && ttl <= 15 * 60_000, 'the failure window is a Redis key whose TTL is the window')

  // The per-address budget (14 a minute) is shared too: 11 spent above, 3 left in all.
  forms = await Promise.all(pages.map(async (b) => await b.request('GET', '/login/')))
  const more: number[] = []
  for (let i = 0; i < 6; i++) {
    const k = i % 2
    const res = await (pages[k] as Browser).request('POST', '/login/', { username: `user${i}`, password: 'x', _csrf: Browser.csrf((forms[k] as { body: string }).body) })
    more.push(res.statusCode)
  }
  t.same(more, [401, 401, 401, 429, 429, 429], 'the 15th password POST from the address is refused, whichever process gets it')
})

t.test('parallel guesses through two gateways: at most 10 passwords checked per (account, address)', async (t) => {
  const { redis, prefix } = testRedis(t, 'gw')
  const file = `${t.testdir()}/gateway.sqlite`
  const one = await buildApp({ database: file, store: undefined, limits: { redis, prefix }, loginRateLimit: { max: 100, timeWindow: 60_000 } }, { trustProxy: true })
  t.teardown(() => one.app.close())
  await seed(one.app, one.agent)
  const two = await buildApp({ database: file, store: undefined, limits: { redis, prefix }, loginRateLimit: { max: 100, timeWindow: 60_000 } }, { trustProxy: true })
  t.teardown(() => two.app.close())
  const address = { 'x-forwarded-for': '203.0.113.8' }
  const first = new Browser(one.app, address)
  const form = await first.request('GET', '/login/')
  t.equal((await first.request('POST', '/login/', { username: 'alice', password: 'first guess', _csrf: Browser.csrf(form.body) })).statusCode, 401)
  const results = await Promise.all(Array.from({ length: 30 }, async (_v, i) => {
    const b = new Browser(i % 2 === 0 ? one.app : two.app, address)
    const f = await b.request('GET', '/login/')
    return (await b.request('POST', '/login/', { username: 'alice', password: `guess ${i}`, _csrf: Browser.csrf(f.body) })).statusCode
  }))
  t.equal(results.filter((s) => s === 401).length, 9, '9 more checked (10 in all), whatever the interleaving')
  t.equal(results.filter((s) => s === 429).length, 21)
})

t.test('honest parallel sign-ins of one account from one address are never locked out (successes do not count)', async (t) => {
  const { redis, prefix } = testRedis(t, 'gw')
  const { app, agent } = await buildApp({ limits: { redis, prefix }, loginRateLimit: { max: 100, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await Promise.all(Array.from({ length: 16 }, async () => { await signIn(app, new Browser(app), secret) }))
  t.equal(await redis.exists(`${prefix}fail:alice\u0000127.0.0.1`), 0, 'nothing counted')
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  t.equal((await browser.request('POST', '/login/', { username: 'alice', password: 'wrong one', _csrf: Browser.csrf(form.body) })).statusCode, 401)
  t.equal(await redis.get(`${prefix}fail:alice\u0000127.0.0.1`), '1', 'a failure counts')
  await signIn(app, browser, secret)
  t.equal(await redis.exists(`${prefix}fail:alice\u0000127.0.0.1`), 0, 'a success clears the failures')
})

t.test('two gateways on one Redis: the obtain budget holds across them', async (t) => {
  const { redis, prefix } = testRedis(t, 'gw')
  const file = `${t.testdir()}/gateway.sqlite`
  const one = await buildApp({ database: file, store: undefined, limits: { redis, prefix }, obtainRateLimit: { max: 2, timeWindow: 60_000 } })
  t.teardown(() => one.app.close())
  const { secret } = await seed(one.app, one.agent)
  const two = await buildApp({ database: file, store: undefined, limits: { redis, prefix }, obtainRateLimit: { max: 2, timeWindow: 60_000 } })
  t.teardown(() => two.app.close())
  await signIn(one.app, new Browser(one.app), secret)
  await signIn(two.app, new Browser(two.app), secret)
  const refused = await call(one.app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(refused.statusCode, 429, 'two sign-ins, one through each process, spend the budget of 2')
  t.equal((await call(two.app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 429)

  const raw = await one.app.ssoGateway.registerService({ name: 'raw', baseUrl: 'http://raw.test' })
  let allowed = 0
  for (let i = 0; i < 24; i++) {
    if ((await call(i % 2 === 0 ? one.app : two.app, '/sso/obtain/', { token: raw.secret, next_url: '/x' })).statusCode === 200) allowed++
  }
  t.equal(allowed, 20, 'raw obtains: 10 × the budget in all, not per process')
})

t.test('the limits store down: password POSTs and obtains are refused with 503 (fail closed); the form still shows', async (t) => {
  const { lines, server } = logLines()
  const { app, agent } = await buildApp({ limits: broken() }, server)
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  t.equal(form.statusCode, 200)
  const res = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 503, 'no password is checked while nothing counts the attempts')
  t.match(res.body, /temporarily unavailable/)
  t.ok(Number(res.headers['retry-after']) > 0)
  const obtained = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(obtained.statusCode, 503)
  t.equal(obtained.json().code, 'FST_SSO_GATEWAY_UNAVAILABLE')
  t.ok(lines.some((l) => /sso gateway unavailable/.test(String(l.msg))), 'logged')
})

t.test('the lockout store down after the throttle: the attempt is refused, not let through', async (t) => {
  const { app, agent } = await buildApp({ limits: broken('fail:') })
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const res = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 503)
})

t.test('a sign-in the budget cannot count (store down at that moment) still completes', async (t) => {
  const { lines, server } = logLines()
  const { app, agent } = await buildApp({ limits: broken('signin:') }, server)
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  // obtain reads the sign-in budget: let that read through, fail only the count after the sign-in.
  const obtained = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(obtained.statusCode, 503, 'the budget cannot be read: the obtain fails closed')
  const inner = new MemoryLimitStore()
  const peekOk: LimitStore = { ...broken('signin:', inner), peek: async (key) => await inner.peek(key) }
  const second = await buildApp({ limits: peekOk }, server)
  t.teardown(() => second.app.close())
  const seeded = await seed(second.app, second.agent)
  await signIn(second.app, new Browser(second.app), seeded.secret)
  t.ok(lines.some((l) => /not counted in the service budget/.test(String(l.msg))), 'the missed count is logged')
})

t.test('Redis cut and restored: 503 while it is away, sign-ins work again without a restart', async (t) => {
  const proxy = new TcpProxy()
  await proxy.start()
  t.teardown(async () => { await proxy.cut() })
  const { prefix } = testRedis(t, 'gw-outage')
  const client = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  const { app, agent } = await buildApp({ limits: { redis: client, prefix, timeout: 500 } })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  await signIn(app, new Browser(app), secret)
  await proxy.cut()
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const cut = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(cut.statusCode, 503, 'a clear 503 page, no crash')
  t.match(cut.body, /Temporarily unavailable/)
  t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 503)
  await proxy.restore()
  await waitFor('Redis back', async () => (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode === 200)
  await signIn(app, new Browser(app), secret)
  t.pass('signed in again, same process')
})

t.test('the limits option is checked at register', async (t) => {
  const { redis } = testRedis(t)
  for (const [value, pattern] of [
    [5, /Invalid option limits: must be a LimitStore/],
    [{ redis: {} }, /limits\.redis: must be a Redis client/],
    [{ redis, prefix: 5 }, /limits\.prefix/],
    [{ redis, timeout: 0 }, /limits\.timeout/],
    [{ redis, other: 1 }, /limits\.other/]
  ] as const) {
    t.throws(() => resolveOptions({ sessionSecret: SESSION_SECRET, limits: value as never }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: pattern })
  }
  const own = new MemoryLimitStore()
  t.equal(resolveOptions({ sessionSecret: SESSION_SECRET, limits: own }).limits, own, 'a LimitStore of your own is used as is')
  t.ok(resolveOptions({ sessionSecret: SESSION_SECRET }).limits instanceof MemoryLimitStore, 'memory by default')
  t.notOk(resolveOptions({ sessionSecret: SESSION_SECRET, limits: { redis, prefix: 'x:', timeout: 100 } }).limits instanceof MemoryLimitStore)
  t.notOk(resolveOptions({ sessionSecret: SESSION_SECRET, limits: { redis } }).limits instanceof MemoryLimitStore, 'prefix and timeout are optional')
})
