import t from 'tap'
import { AUTH_FAILURE_ATTEMPTS } from '../src/outbox/dispatcher.js'
import { deauthenticateEvent } from '../src/outbox/events.js'
import { get, setup } from './outbox-helpers.js'

// Risk: a 401 or 404 from a service during a deploy or a signing-secret rotation dead-lettered a
// deauthenticate at once; the user then stayed signed in there. They get a few retries now.

for (const status of [401, 403, 404]) {
  t.test(`HTTP ${status} is retried ${AUTH_FAILURE_ATTEMPTS - 1} times before the event is dead`, async (t) => {
    const { store, pool, clock, run, event, service, user } = await setup(t)
    const e = await event(deauthenticateEvent(service, user('alice')))
    for (let attempt = 1; attempt <= AUTH_FAILURE_ATTEMPTS; attempt++) {
      pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(status, '')
      await run()
      const row = await get(store, e.id)
      t.match(row, { attempts: attempt, status: attempt < AUTH_FAILURE_ATTEMPTS ? 'pending' : 'dead', lastError: `HTTP ${status}` })
      clock.offset = row.nextAttemptAt - Date.now() + 1
    }
  })
}

t.test('the service fixed (rotation done): the retry delivers', async (t) => {
  const { store, pool, clock, run, event, service, user } = await setup(t)
  const e = await event(deauthenticateEvent(service, user('alice')))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(401, '')
  await run()
  clock.offset = (await get(store, e.id)).nextAttemptAt - Date.now() + 1
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true })
  await run()
  t.match(await get(store, e.id), { status: 'delivered', attempts: 2 })
})
