import type { FastifyBaseLogger } from 'fastify'
import { generateSigningSecret, verifyWebhook } from 'fastify-sso-protocol'
import t from 'tap'
import { MockAgent } from 'undici'
import { OutboxDispatcher, RETRY_SCHEDULE } from '../src/outbox/dispatcher.js'
import { get, logger, ORIGIN, setup } from './outbox-helpers.js'
import { accountFor, bodyFor, deauthenticateEvent, updateAccountEvent } from '../src/outbox/events.js'
import { SqliteGatewayStore } from '../src/store/sqlite.js'
import type { NewOutboxEvent, ServiceRecord, UserRecord } from '../src/store/store.js'

t.test('a 500 is retried later with backoff; a later attempt delivers', async (t) => {
  const { store, pool, clock, run, event, service, user } = await setup(t)
  const e = await event(updateAccountEvent(service, user('u1')))
  const bodies: Array<{ headers: Record<string, string>, body: string }> = []
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(500, 'oops')
  await run()
  let row = await get(store, e.id)
  t.match(row, { status: 'pending', attempts: 1, lastError: 'HTTP 500' })
  const delay = row.nextAttemptAt - clock.now
  t.ok(delay >= RETRY_SCHEDULE[0]! * 0.8 && delay <= RETRY_SCHEDULE[0]! * 1.2, `first retry after about 5 s (${delay})`)
  t.match(await store.outbox.status(), [{ serviceId: service.id, pending: 1, dead: 0, failingSince: Number }])

  await run()
  t.equal((await get(store, e.id)).attempts, 1, 'not retried before it is due')

  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, (opts) => {
    bodies.push({ headers: opts.headers as Record<string, string>, body: String(opts.body) }); return { ok: true }
  })
  clock.offset += 7000
  await run()
  row = await get(store, e.id)
  t.match(row, { status: 'delivered', attempts: 2, lastError: null })
  t.same(await store.outbox.status(), [], 'nothing pending or dead')
  t.equal(bodies[0]!.headers['webhook-id'], e.id, 'the same webhook-id on every attempt')
  t.ok(Math.abs(Number(bodies[0]!.headers['webhook-timestamp']) - Math.floor(clock.now / 1000)) <= 1, 'timestamped by the dispatcher clock')
  t.match(verifyWebhook({ secrets: [service.signingSecret], headers: bodies[0]!.headers, body: bodies[0]!.body, now: Math.floor(clock.now / 1000) }), { ok: true })
})

t.test('a final 4xx dead-letters at once; 408, 429, 404 (see auth-failure-retries) and network errors are retried', async (t) => {
  const { store, pool, run, event, service, user, log } = await setup(t)
  const cases: Array<[number, string]> = [[410, 'dead'], [404, 'pending'], [400, 'dead'], [408, 'pending'], [429, 'pending'], [503, 'pending'], [302, 'pending']]
  for (const [status, expected] of cases) {
    const e = await event(updateAccountEvent(service, user(`u${status}`)))
    pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(status, '')
    await run()
    t.match(await get(store, e.id), { status: expected, attempts: 1, lastError: `HTTP ${status}` }, `HTTP ${status} → ${expected}`)
  }
  t.ok(log.lines.some(([level, obj]) => level === 'error' && (obj as { audit?: string }).audit === 'event_dead'))
  t.equal((await store.outbox.list('dead', 100)).length, 2)

  const n = await event(updateAccountEvent(service, user('net')))
  await run() // no interceptor left: the MockAgent refuses to connect
  t.match(await get(store, n.id), { status: 'pending', attempts: 1, lastError: /./ }, 'a network error is retried')
})

t.test('Retry-After is honoured (seconds or a date); a bad one is ignored', async (t) => {
  const { store, pool, clock, run, event, service, user } = await setup(t)
  const cases: Array<[string, number, number]> = [
    ['120', 119_900, 120_000],
    [new Date(Date.now() + 3_600_000).toUTCString(), 3_590_000, 3_601_000],
    ['soon', 4000, 6000],
    ['1', 4000, 6000]
  ]
  for (const [value, min, max] of cases) {
    const e = await event(updateAccountEvent(service, user(`u-${value}`)))
    pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(503, '', { headers: { 'retry-after': value } })
    clock.offset = 0
    await run()
    const wait = (await get(store, e.id)).nextAttemptAt - clock.now
    t.ok(wait >= min && wait <= max, `Retry-After ${value}: next attempt in ${wait} ms`)
  }
})

t.test('after the last retry an event is dead; a dead event can be replayed', async (t) => {
  const { store, pool, clock, run, event, service, user } = await setup(t)
  const e = await event(deauthenticateEvent(service, user('u1')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(500, '').times(RETRY_SCHEDULE.length + 1)
  for (let i = 0; i <= RETRY_SCHEDULE.length; i++) {
    await run()
    clock.offset += 30 * 3_600_000 // past the longest delay with jitter (24 h × 1.2)
  }
  t.match(await get(store, e.id), { status: 'dead', attempts: RETRY_SCHEDULE.length + 1 })
  t.match(await store.outbox.status(), [{ pending: 0, dead: 1 }])

  t.equal(await store.outbox.replay('evt_unknown', clock.now), false)
  t.equal(await store.outbox.replay(e.id, clock.now), true)
  t.equal(await store.outbox.replay(e.id, clock.now), false, 'only a dead event can be replayed')
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '')
  await run()
  t.match(await get(store, e.id), { status: 'delivered' })
})

t.test('events go out in order per (service, user); other users are not held up', async (t) => {
  const { store, pool, clock, run, event, service, user } = await setup(t)
  const first = await event(updateAccountEvent(service, user('alice')))
  const second = await event(deauthenticateEvent(service, user('alice')))
  const bob = await event(updateAccountEvent(service, user('bob')))
  const order: string[] = []
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply((opts) => {
    const id = (opts.headers as Record<string, string>)['webhook-id']!
    order.push(id)
    return { statusCode: id === first.id ? 500 : 200, data: '' }
  }).persist()
  await run()
  t.same(order, [first.id, bob.id], 'alice\'s second event waits for her first')
  t.match(await get(store, second.id), { status: 'pending', attempts: 0 })
  clock.offset += 10_000
  await run()
  t.same(order.slice(2), [first.id], 'the first is retried…')
  t.match(await get(store, second.id), { status: 'pending', attempts: 0 })
  t.match(await get(store, first.id), { status: 'pending', attempts: 2 })
})

t.test('events for a disabled or removed service are dropped', async (t) => {
  const { store, run, event, service, user, log } = await setup(t)
  const e = await event(updateAccountEvent(service, user('u1')))
  await store.services.update(service.id, { enabled: false })
  await run()
  t.match(await get(store, e.id), { status: 'dead', lastError: 'service removed or disabled' })
  t.equal(await store.services.update('svc_none', { enabled: true }), null)
  const orphan = await event({ id: 'evt_orphan', serviceId: 'svc_gone', userKey: 'u', payload: '{}' })
  await run()
  t.match(await get(store, orphan.id), { status: 'dead' })
  t.ok(log.lines.some(([, obj]) => (obj as { service?: string }).service === 'svc_gone'))
})

t.test('deliverNow: waits at most its timeout, never jumps the queue', async (t) => {
  const { store, pool, dispatcher, event, service, user } = await setup(t)
  t.equal(await dispatcher.deliverNow([], 100), true, 'nothing to deliver')

  const slow = await event(updateAccountEvent(service, user('slow')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').delay(300)
  const started = Date.now()
  t.equal(await dispatcher.deliverNow([slow.id], 50), false, 'gave up waiting')
  t.ok(Date.now() - started < 250)
  await dispatcher.idle()
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.match(await get(store, slow.id), { status: 'delivered' }, 'the attempt still completed in the background')

  // An earlier event for the same user is pending and not due: the new one must wait.
  const blocker = await event(updateAccountEvent(service, user('held')))
  await store.outbox.fail(blocker.id, 'HTTP 500', Date.now() + 60_000, Date.now())
  const held = await event(updateAccountEvent(service, user('held')))
  t.equal(await dispatcher.deliverNow([held.id], 500), false)
  t.match(await get(store, held.id), { status: 'pending', attempts: 0 }, 'released untouched')
  t.equal((await store.outbox.claim(Date.now() + 120_000, 1000, 10, [held.id])).length, 0, 'still behind the blocker')

  // All or nothing: when one of the events cannot go now, the others are given back untouched.
  const free = await event(updateAccountEvent(service, user('free')))
  t.equal(await dispatcher.deliverNow([free.id, held.id], 500), false)
  t.match(await get(store, free.id), { status: 'pending', attempts: 0 })
  t.same((await store.outbox.claim(Date.now(), 1000, 10, [free.id])).map((e) => e.id), [free.id], 'its lease was released at once')
})

t.test('a store failure while delivering is logged, never thrown', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  const { dispatcher, event, service, user, log } = await setup(t, store)
  const e = await event(updateAccountEvent(service, user('u1')))
  const real = store.outbox.claim
  store.outbox.claim = async () => { throw new Error('disk on fire') }
  t.equal(await dispatcher.deliverNow([e.id], 500), false)
  dispatcher.kick()
  await dispatcher.idle()
  t.ok(log.lines.some(([level, , msg]) => level === 'error' && msg === 'sso outbox: immediate delivery failed'))
  t.ok(log.lines.some(([level, , msg]) => level === 'error' && msg === 'sso outbox: claiming events failed'))
  store.outbox.claim = real
})

t.test('kicks during a run are coalesced into one more run', async (t) => {
  const { store, pool, run, dispatcher, event, service, user } = await setup(t)
  const a = await event(updateAccountEvent(service, user('a')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').delay(50).times(2)
  dispatcher.kick()
  const b = await event(updateAccountEvent(service, user('b')))
  dispatcher.kick()
  dispatcher.kick()
  await dispatcher.idle()
  await run()
  t.match(await get(store, a.id), { status: 'delivered' })
  t.match(await get(store, b.id), { status: 'delivered' })
})

t.test('close() waits for a delivery in flight, then stops', async (t) => {
  const { store, pool, dispatcher, event, service, user } = await setup(t)
  const e = await event(updateAccountEvent(service, user('u1')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').delay(200)
  dispatcher.start()
  await new Promise((resolve) => setTimeout(resolve, 20))
  await dispatcher.close(5000)
  t.match(await get(store, e.id), { status: 'delivered' }, 'the in-flight delivery finished')

  const later = await event(updateAccountEvent(service, user('u2')))
  dispatcher.kick()
  await dispatcher.idle()
  t.equal(await dispatcher.deliverNow([later.id], 100), false, 'closed: nothing goes out')
  t.match(await get(store, later.id), { status: 'pending', attempts: 0 })
})

t.test('close() cuts a hung delivery short after its deadline and releases the event at once', async (t) => {
  const { store, pool, dispatcher, event, service, user, log } = await setup(t)
  const e = await event(updateAccountEvent(service, user('u1')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').delay(800)
  dispatcher.kick()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal((await store.outbox.claim(Date.now(), 1000, 10)).length, 0, 'claimed by the dispatcher while in flight')
  const started = Date.now()
  await dispatcher.close(100)
  t.ok(Date.now() - started < 500, `closed in ${Date.now() - started} ms`)
  t.match(await get(store, e.id), { status: 'pending', attempts: 0, lastError: null }, 'not counted as an attempt')
  t.same((await store.outbox.claim(Date.now(), 1000, 10)).map((c) => c.id), [e.id], 'its lease is gone: another dispatcher takes it now')
  t.ok(log.lines.some(([level, obj]) => level === 'warn' && (obj as { audit?: string }).audit === 'event_released'))
})

t.test('a custom retry schedule: its delays, then dead after its last one', async (t) => {
  const { store, pool, clock, run, event, service, user } = await setup(t, undefined, [1000, 2000])
  const e = await event(updateAccountEvent(service, user('u1')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(500, '').times(3)
  await run()
  const wait = (await get(store, e.id)).nextAttemptAt - clock.now
  t.ok(wait >= 800 && wait <= 1200, `first retry after about 1 s (${wait})`)
  clock.offset += 1300
  await run()
  const wait2 = (await get(store, e.id)).nextAttemptAt - clock.now
  t.ok(wait2 >= 1600 && wait2 <= 2400, `second retry after about 2 s (${wait2})`)
  clock.offset += 2500
  await run()
  t.match(await get(store, e.id), { status: 'dead', attempts: 3 })
})

t.test('delivery status per service is logged when deliveries fail, at most once a minute', async (t) => {
  const { pool, clock, run, event, service, user, log } = await setup(t)
  const statusLines = () => log.lines.filter(([, obj]) => (obj as { audit?: string }).audit === 'delivery_status')
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(500, '').persist()
  await event(updateAccountEvent(service, user('u1')))
  await run()
  t.equal(statusLines().length, 1)
  t.match(statusLines()[0], ['warn', { service: 'svc', pending: 1, dead: 0, failingSince: /^\d{4}-\d\d-\d\dT/ }, 'sso outbox: events waiting for a service'])
  clock.offset += 10_000
  await event(updateAccountEvent(service, user('u2')))
  await event({ id: 'evt_orphan', serviceId: 'svc_gone', userKey: 'u', payload: '{}' })
  await run()
  t.equal(statusLines().length, 1, 'not again within a minute')
  clock.offset += 60_000
  await event(updateAccountEvent(service, user('u3')))
  await run()
  t.equal(statusLines().length, 3, 'again after a minute: one line per service with pending or dead events')
  t.match(statusLines().slice(1), [
    ['warn', { service: 'svc', pending: 3, dead: 0 }],
    ['warn', { service: 'svc_gone', pending: 0, dead: 1, failingSince: null }]
  ])
})

t.test('a hanging service does not hold up deliveries to the others', async (t) => {
  const { store, agent, pool, dispatcher, event, service, user } = await setup(t)
  const other = await store.services.create({
    id: 'svc_2', name: 'other', baseUrl: 'http://other.test', eventUrl: 'http://other.test/sso/event/', tokenHash: 'h2',
    signingSecret: generateSigningSecret(), djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
  })
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').delay(800)
  agent.get('http://other.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').times(2)
  const slow = await event(updateAccountEvent(service, user('u1')))
  dispatcher.kick()
  await new Promise((resolve) => setTimeout(resolve, 20))
  const started = Date.now()
  const fast = await event(updateAccountEvent(other, user('u1')))
  dispatcher.kick()
  while ((await get(store, fast.id)).status !== 'delivered' && Date.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 10))
  t.ok(Date.now() - started < 400, `the other service's event went out after ${Date.now() - started} ms`)
  t.match(await get(store, slow.id), { status: 'pending', attempts: 0 }, 'while the slow one is still in flight')
  await dispatcher.idle()
  t.match(await get(store, slow.id), { status: 'delivered' })
})

t.test('a kick that comes as a run is ending starts another run', async (t) => {
  const { store, dispatcher } = await setup(t)
  const real = store.outbox.claim
  let claims = 0
  store.outbox.claim = async (...args: Parameters<typeof real>) => {
    const events = await real(...args)
    if (++claims === 1) dispatcher.kick() // after the last claim of the run, before it ends
    return events
  }
  dispatcher.kick()
  await dispatcher.idle()
  await dispatcher.idle()
  t.equal(claims, 2, 'the late kick was not lost')
  store.outbox.claim = real
})

t.test('more due events than one batch: all go out in one run', async (t) => {
  const { store, pool, run, event, service, user } = await setup(t)
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '').times(70)
  for (let i = 0; i < 70; i++) await event(updateAccountEvent(service, user(`u${i}`)))
  await run()
  t.equal((await store.outbox.list('delivered', 100)).length, 70)
})

t.test('a store failure while recording an outcome is logged, never thrown', async (t) => {
  const { store, pool, run, event, service, user, log } = await setup(t)
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, '')
  await event(updateAccountEvent(service, user('u1')))
  const real = store.outbox.complete
  store.outbox.complete = async () => { throw new Error('disk on fire') }
  await run()
  store.outbox.complete = real
  t.ok(log.lines.some(([level, , msg]) => level === 'error' && msg === 'sso outbox: recording a delivery failed'))
})

t.test('expediteEvents: a (service, user)\'s pending events become due, oldest first; claimed ones are left alone', async (t) => {
  const { store, clock, event, service, user } = await setup(t)
  const a = await event(updateAccountEvent(service, user('u1')))
  const b = await event(deauthenticateEvent(service, user('u1')))
  const other = await event(updateAccountEvent(service, user('u2')))
  await store.outbox.fail(a.id, 'HTTP 500', clock.now + 300_000, Date.now())
  await store.outbox.fail(other.id, 'HTTP 500', clock.now + 300_000, Date.now())
  t.same(await store.outbox.expedite(service.id, 'u1', clock.now), [a.id, b.id])
  t.same((await store.outbox.claim(clock.now, 1000, 10)).map((e) => e.id), [a.id], 'due now, still in order; other users untouched')
  t.same(await store.outbox.expedite(service.id, 'u1', clock.now), [a.id, b.id], 'a claimed event is listed but not rescheduled')
  t.ok((await get(store, a.id)).nextAttemptAt <= clock.now)
  t.same(await store.outbox.expedite(service.id, 'nobody', clock.now), [])
})

t.test('event bodies', async (t) => {
  const service = { id: 's', protocol: 'django-sso-2', djangoToken: 'tok', fields: ['email', 'display_name', 'team', 'missing'] } as unknown as ServiceRecord
  const u = { id: 'u', username: 'alice', isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: 'A', attributes: { username: 'forged', team: 'x' } } as unknown as UserRecord
  const upd = JSON.parse(updateAccountEvent(service, u).payload)
  t.notOk('token' in upd, 'the secret is never stored in the outbox')
  t.same(JSON.parse(bodyFor(service, JSON.stringify(upd))), {
    type: 'update_account', fields: { user_identy: 'alice', team: 'x', is_active: true, is_staff: false, is_superuser: false, email: null, display_name: 'A' }, token: 'tok'
  }, 'it is added to the body sent to a django-sso service, in its dialect')
  t.same(JSON.parse(bodyFor({ ...service, protocol: 'django-sso-1' }, JSON.stringify(upd))),
    { type: 'update_account', username: 'alice', is_active: true, is_staff: false, is_superuser: false, token: 'tok' }, '1.x: its four keys')
  t.same(accountFor({ fields: null, protocol: 'django-sso-2' }, u, ['g']), { user_id: 'u', username: 'alice', is_active: true, is_staff: false, is_superuser: false },
    'a django-sso service gets no optional field unless it asks')
  t.same(upd, { user_id: 'u', username: 'alice', team: 'x', is_active: true, is_staff: false, is_superuser: false, email: null, display_name: 'A', type: 'update_account' },
    'only the fields the service asked for; attributes never override the core fields')
  t.same(JSON.parse(deauthenticateEvent(service, u, 'sso_1', 'logout').payload), { type: 'deauthenticate', username: 'alice', user_id: 'u', sso_session: 'sso_1', reason: 'logout' })
  const before = Date.now()
  const body = JSON.parse(deauthenticateEvent({ ...service, protocol: 'fastify-sso', djangoToken: null }, u).payload) as { issued_at: number }
  t.ok(body.issued_at >= before && body.issued_at <= Date.now(), 'a fastify-sso service is told when the event was issued')
  t.same(body, { type: 'deauthenticate', username: 'alice', user_id: 'u', issued_at: body.issued_at })
})

t.test('a backlog larger than a batch is claimed in chunks and delivered in full; a kick claims at once', async (t) => {
  const { store, pool, run, event, service, user, dispatcher } = await setup(t)
  let served = 0
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, () => { served++; return { ok: true } }).delay(20).persist()
  for (let i = 0; i < 100; i++) await event(updateAccountEvent(service, user(`backlog-${i}`)))
  dispatcher.kick()
  // While the first batch is in flight, a kick asks for more at once.
  await new Promise((resolve) => setTimeout(resolve, 5))
  await event(updateAccountEvent(service, user('late')))
  dispatcher.kick()
  await run()
  t.equal(served, 101, 'every event delivered once')
  t.same(await store.outbox.list('pending', 10), [])
})

t.test('a 2xx is a delivery only when its body says {"ok": true}: django-sso answers every failure with HTTP 200', async (t) => {
  const { store, pool, clock, log, run, event, service, user } = await setup(t)
  const django = await store.services.create({ ...service, id: 'svc_dj', name: 'dj', tokenHash: 'h2', djangoToken: 'dj-token', protocol: 'django-sso-1', createdAt: 0 } as never)
  const cases: Array<[ServiceRecord, number, string, string | null]> = [
    [django, 200, '{"error": "update_account() got an unexpected keyword argument \'user_id\'"}', "refused: update_account() got an unexpected keyword argument 'user_id'"],
    [django, 200, '', 'empty answer, expected {"ok": true}'],
    [service, 200, '{}', 'answer without "ok": true'],
    [service, 200, 'null', 'answer without "ok": true'],
    [service, 200, '{"ok": "yes"}', 'answer without "ok": true'],
    [service, 200, '<html>ok</html>', 'answer is not JSON, expected {"ok": true}'],
    [service, 200, `{"error": "${'x'.repeat(20_000)}"}`, 'answer is not JSON, expected {"ok": true}'],
    [service, 204, '', null],
    [django, 200, '{"ok": true}', null]
  ]
  for (const [target, status, answer, error] of cases) {
    const e = await event(updateAccountEvent(target, user(`u-${Math.random()}`)))
    pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(status, answer)
    await run()
    const row = await get(store, e.id)
    if (error === null) {
      t.match(row, { status: 'delivered', lastError: null }, `${status} ${answer.slice(0, 20)}: delivered`)
    } else {
      t.match(row, { status: 'pending', attempts: 1, lastError: error }, `${status} ${answer.slice(0, 40)}: a failure, retried later`)
      t.ok(row.nextAttemptAt > clock.now, 'scheduled for a retry')
      await store.outbox.fail(e.id, 'done with this case', null, Date.now())
    }
  }
  const audits = log.lines.map(([, o]) => (o as { audit?: string }).audit)
  t.equal(audits.filter((a) => a === 'event_delivered').length, 2, 'only the two real successes were logged as delivered')
  t.match(log.lines.find(([, o]) => typeof (o as { error?: string }).error === 'string' && (o as { error: string }).error.startsWith('refused')),
    ['warn', { audit: 'event_failed', service: 'dj' }], 'a refusal is logged as a failed delivery')
})

