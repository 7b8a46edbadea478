import { join } from 'node:path'
import t from 'tap'
import { MockAgent } from 'undici'
import { OutboxDispatcher } from '../src/outbox/dispatcher.js'
import { updateAccountEvent } from '../src/outbox/events.js'
import { SqliteGatewayStore } from '../src/store/sqlite.js'
import { get, logger, ORIGIN, setup } from './outbox-helpers.js'

// Risk: a service back after an outage waited for the next scheduled retry (5 minutes and more)
// while signed-out users stayed signed in there. Its backlog now goes out within seconds.

const LONG = [600_000, 600_000, 600_000]

t.test('a service that calls the gateway again gets its waiting events at once', async (t) => {
  const { store, pool, run, event, service, user, dispatcher } = await setup(t, undefined, LONG)
  const a = await event(updateAccountEvent(service, user('a')))
  const b = await event(updateAccountEvent(service, user('b')))
  await run() // no interceptor: the MockAgent refuses to connect (the service is down)
  t.match(await get(store, a.id), { status: 'pending', attempts: 1 })
  t.ok((await get(store, b.id)).nextAttemptAt > Date.now() + 400_000, 'next attempt in about 10 minutes')

  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true }).times(2)
  dispatcher.seen(service.id) // e.g. it called /sso/obtain/
  await new Promise((resolve) => setTimeout(resolve, 50))
  await dispatcher.idle()
  t.match(await get(store, a.id), { status: 'delivered', attempts: 2 })
  t.match(await get(store, b.id), { status: 'delivered', attempts: 2 })
  dispatcher.seen(service.id)
  t.pass('seen again with nothing waiting: nothing to do')
})

t.test('a probe that gets an answer resumes the backlog; one that does not leaves it alone', async (t) => {
  const { store, pool, run, event, service, user, dispatcher } = await setup(t, undefined, LONG, { probeInterval: 50 })
  dispatcher.start()
  const e = await event(updateAccountEvent(service, user('a')))
  await run()
  t.match(await get(store, e.id), { status: 'pending', attempts: 1 })
  pool.intercept({ path: '/sso/event/', method: 'HEAD' }).reply(503, '')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.match(await get(store, e.id), { status: 'pending', attempts: 1 }, 'a 503 to the probe: still waiting')

  pool.intercept({ path: '/sso/event/', method: 'HEAD' }).reply(404, '')
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true })
  for (let i = 0; i < 100 && (await get(store, e.id)).status !== 'delivered'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(await get(store, e.id), { status: 'delivered', attempts: 2 }, 'the probe saw it up (404 to HEAD): delivered')
})

t.test('a service that answers probes but still fails waits longer after each resume', async (t) => {
  const { store, pool, run, event, service, user, dispatcher, clock } = await setup(t, undefined, [1000, 1000, 1000, 1000, 1000])
  const e = await event(updateAccountEvent(service, user('a')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(502, '')
  await run()
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(502, '')
  dispatcher.seen(service.id)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await dispatcher.idle()
  t.equal((await get(store, e.id)).attempts, 2, 'the first resume tried once more')
  dispatcher.seen(service.id)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await run()
  t.equal((await get(store, e.id)).attempts, 2, 'seen again at once: no second resume yet (it waits 10 s)')
  clock.offset += 11_000
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true })
  dispatcher.seen(service.id)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await dispatcher.idle()
  t.match(await get(store, e.id), { status: 'delivered' })
})

t.test('a delivery that gets through resumes the rest of the backlog', async (t) => {
  const { store, pool, run, event, service, user } = await setup(t, undefined, LONG)
  const a = await event(updateAccountEvent(service, user('a')))
  await run()
  t.match(await get(store, a.id), { attempts: 1, status: 'pending' })
  const c = await event(updateAccountEvent(service, user('c')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true }).persist()
  await run()
  for (let i = 0; i < 100 && (await get(store, a.id)).status !== 'delivered'; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(await get(store, c.id), { status: 'delivered', attempts: 1 })
  t.match(await get(store, a.id), { status: 'delivered', attempts: 2 }, 'the event waiting 10 minutes went too')
})

t.test('a restarted gateway probes the services its waiting events are for', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const first = await setup(t, new SqliteGatewayStore({ filename: file }), LONG)
  const a = await first.event(updateAccountEvent(first.service, first.user('a')))
  await first.run()
  t.match(await get(first.store, a.id), { attempts: 1, status: 'pending' })

  // Another service with an event that never failed: not probed at start.
  await first.store.services.create({ ...first.service, id: 'svc_2', name: 'other', tokenHash: 'h2', eventUrl: 'http://other.test/sso/event/' })
  await first.store.outbox.enqueue([updateAccountEvent((await first.store.services.byId('svc_2'))!, first.user('z'))])
  const store = new SqliteGatewayStore({ filename: file })
  const agent = new MockAgent()
  agent.disableNetConnect()
  const dispatcher = new OutboxDispatcher({ store, log: logger(), timeout: 1000, interval: 60_000, dispatcher: agent, retrySchedule: LONG, probeInterval: 50 })
  t.teardown(async () => { await dispatcher.close(100); await store.close() })
  agent.get(ORIGIN).intercept({ path: '/sso/event/', method: 'HEAD' }).reply(404, '')
  agent.get(ORIGIN).intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true })
  dispatcher.start()
  for (let i = 0; i < 100 && (await get(store, a.id)).status !== 'delivered'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(await get(store, a.id), { status: 'delivered', attempts: 2 })
})

t.test('probing and resuming survive failures, skip removed services and stop at close', async (t) => {
  const { store, run, event, service, user, dispatcher, log, pool, clock } = await setup(t, undefined, LONG, { probeInterval: 30 })
  const realStatus = store.outbox.status.bind(store.outbox)
  store.outbox.status = async () => { throw new Error('status unreadable') }
  dispatcher.start()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(log.lines.some(([, , msg]) => msg === 'sso outbox: reading the delivery status failed'))
  store.outbox.status = realStatus

  const e = await event(updateAccountEvent(service, user('a')))
  await run()
  const realExpedite = store.outbox.expediteService.bind(store.outbox)
  store.outbox.expediteService = async () => { throw new Error('disk on fire') }
  dispatcher.seen(service.id)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(log.lines.some(([, , msg]) => msg === 'sso outbox: making waiting events due failed'))
  store.outbox.expediteService = realExpedite

  await event(updateAccountEvent(service, user('b')))
  await run() // unreachable again
  const realGet = store.services.byId.bind(store.services)
  store.services.byId = async () => { throw new Error('cannot read services') }
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(log.lines.some(([, , msg]) => msg === 'sso outbox: probing services failed'))
  store.services.byId = realGet

  // A probe slower than the probe interval: rounds do not pile up.
  pool.intercept({ path: '/sso/event/', method: 'HEAD' }).reply(503, '').delay(200)
  await new Promise((resolve) => setTimeout(resolve, 300))

  // Resumed while nothing waits any more (its events went elsewhere): nothing to make due.
  const pending = await store.outbox.list('pending', 100)
  for (const p of pending) await store.outbox.fail(p.id, 'given up by the test', null, Date.now())
  clock.offset += 3_600_000
  dispatcher.seen(service.id)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(log.lines.some(([, o]) => (o as { audit?: string }).audit === 'backlog_resumed'), 'nothing resumed: no backlog_resumed record')
  clock.offset = 0

  // Unreachable again, then disabled: the probe drops it.
  await event(updateAccountEvent(service, user('c')))
  await run()
  await store.services.update(service.id, { enabled: false })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(await get(store, e.id), { status: 'dead' }, 'a disabled service is dropped from the probes (nothing thrown)')
  await dispatcher.close(100)
  dispatcher.seen(service.id)
  t.pass('seen after close does nothing')
})
