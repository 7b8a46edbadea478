import t from 'tap'
import { Redis } from 'ioredis'
import { isLimitStore, isRedisClient, MemoryLimitStore, RedisLimitStore, withTimeout } from '../src/index.js'
import { REDIS_URL, testRedis, TcpProxy } from '../../../test/helpers/redis.js'
import { limitStoreSuite } from './limit-store-suite.js'

t.test('MemoryLimitStore', async (t) => {
  limitStoreSuite(t, () => ({ store: new MemoryLimitStore() }))
})

t.test('RedisLimitStore', async (t) => {
  const { redis, prefix } = testRedis(t, 'limits')
  const second = new Redis(REDIS_URL)
  t.teardown(() => { second.disconnect() })
  let n = 0
  limitStoreSuite(t, () => {
    const p = `${prefix}${n++}:`
    return { store: new RedisLimitStore({ redis, prefix: p }), again: new RedisLimitStore({ redis: second, prefix: p }) }
  })

  t.test('one Redis key per counted key, under the prefix, whose TTL is the window', async (t) => {
    const store = new RedisLimitStore({ redis, prefix: `${prefix}ttl:` })
    await store.hit('ip:203.0.113.9', 30_000)
    const ttl = await redis.pttl(`${prefix}ttl:ip:203.0.113.9`)
    t.ok(ttl > 0 && ttl <= 30_000, `TTL ${ttl} ms`)
    t.equal(await redis.get(`${prefix}ttl:ip:203.0.113.9`), '1')
  })
})

t.test('the default prefix', async (t) => {
  const { redis } = testRedis(t)
  const key = `probe-${process.pid}-${Date.now()}`
  t.teardown(async () => { await redis.del(`sso:limits:${key}`) })
  await new RedisLimitStore({ redis }).hit(key, 5000)
  t.equal(await redis.get(`sso:limits:${key}`), '1')
})

t.test('a Redis that does not answer: calls reject within the timeout; they work again once it is back', async (t) => {
  const hung = new RedisLimitStore({ redis: { eval: async () => await new Promise(() => {}) }, timeout: 50 })
  await t.rejects(hung.hit('k', 1000), /did not answer within 50 ms/)
  await t.rejects(hung.peek('k'), /did not answer/)
  await t.rejects(hung.reset('k'), /did not answer/)

  const proxy = new TcpProxy()
  await proxy.start()
  t.teardown(async () => { await proxy.cut() })
  const { prefix } = testRedis(t)
  const client = new Redis(proxy.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  const store = new RedisLimitStore({ redis: client, prefix, timeout: 500 })
  t.equal((await store.hit('k', 60_000)).count, 1)
  await proxy.cut()
  await t.rejects(store.hit('k', 60_000), 'unreachable: the hit fails, nothing is allowed through')
  await proxy.restore()
  let count = 0
  const deadline = Date.now() + 15_000
  while (count === 0 && Date.now() < deadline) {
    try { count = (await store.hit('k', 60_000)).count } catch { await new Promise((resolve) => setTimeout(resolve, 50)) }
  }
  t.ok(count >= 2, 'back without a restart, the window kept')
})

t.test('MemoryLimitStore stays bounded: past maxKeys the oldest and the expired windows go first', async (t) => {
  let now = 1000
  const store = new MemoryLimitStore(2, () => now)
  await store.hit('a', 100)
  await store.hit('b', 100)
  await store.hit('c', 100)
  t.equal(await store.peek('a'), null, 'the oldest went')
  t.equal((await store.peek('b'))?.count, 1)
  now = 1050
  await store.hit('d', 1000)
  now = 1150
  t.equal(await store.peek('b'), null, 'expired')
  await store.hit('e', 1000)
  t.equal(await store.peek('c'), null, 'an expired window is dropped when a new one starts')
  t.equal((await store.peek('d'))?.count, 1, 'a live one under the bound stays')
})

t.test('isLimitStore, isRedisClient, withTimeout', async (t) => {
  t.equal(isLimitStore(new MemoryLimitStore()), true)
  t.equal(isLimitStore({ hit () {}, peek () {} }), false)
  t.equal(isLimitStore(null), false)
  t.equal(isRedisClient({ eval () {} }), true)
  t.equal(isRedisClient({}), false)
  t.equal(isRedisClient('redis://x'), false)
  t.equal(await withTimeout(Promise.resolve(7), 100, 'slow'), 7)
})
