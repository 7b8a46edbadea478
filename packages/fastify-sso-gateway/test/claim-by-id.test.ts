import t from 'tap'
import { SqliteGatewayStore } from '../src/index.js'

// An inline delivery (sign-in) claims its own event by id: that must not depend on how many
// other events are due (a backlog while a service is down), and must keep the ordering rule.
t.test('claiming named events looks them up by id, keeps per-user order, ignores repeats', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  t.teardown(() => store.close())
  const event = (id: string, user: string) => ({ id, serviceId: 'svc_1', userKey: user, payload: '{}' })
  const backlog = Array.from({ length: 2000 }, (_, i) => event(`evt_backlog_${i}`, `usr_${i}`))
  await store.outbox.enqueue([...backlog, event('evt_first', 'usr_x'), event('evt_second', 'usr_x'), event('evt_mine', 'usr_me')])
  const plan = store.db.prepare(`EXPLAIN QUERY PLAN SELECT o.* FROM (SELECT DISTINCT value FROM json_each(?)) j
    CROSS JOIN outbox o ON o.id = j.value`).all('[]') as Array<{ detail: string }>
  t.ok(plan.some((r) => /SEARCH o USING INDEX/.test(r.detail)), 'an index lookup by id, not a scan of the backlog')

  const now = Date.now() + 1
  const mine = await store.outbox.claim(now, 1000, 5, ['evt_mine', 'evt_mine'])
  t.same(mine.map((e) => e.id), ['evt_mine'], 'only the named event, once')
  t.same((await store.outbox.claim(now, 1000, 5, ['evt_mine'])).length, 0, 'leased: not claimed twice')
  t.same((await store.outbox.claim(now, 1000, 5, ['evt_second'])).length, 0, 'still behind an earlier event of the same user')
  t.same((await store.outbox.claim(now, 1000, 5, ['evt_second', 'evt_first', 'evt_backlog_7'])).map((e) => e.id),
    ['evt_backlog_7', 'evt_first'], 'in queue order, ordering rule applied')
  t.same((await store.outbox.claim(now, 1000, 1, ['evt_backlog_8', 'evt_backlog_9'])).map((e) => e.id), ['evt_backlog_8'], 'limit kept')
})
