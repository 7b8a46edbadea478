import t from 'tap'
import { FixedWindowCounter } from '../src/index.js'

t.test('a fixed-window counter blocks after max events within the window', async (t) => {
  const c = new FixedWindowCounter(3, 1000)
  for (let i = 0; i < 3; i++) {
    t.equal(c.blockedFor('alice', 100), 0)
    c.add('alice', 100)
  }
  t.equal(c.blockedFor('alice', 400), 700, 'blocked until the window ends')
  t.equal(c.blockedFor('bob', 400), 0, 'per key')
  t.equal(c.blockedFor('alice', 1100), 0, 'the window is over')
  c.add('alice', 1100)
  t.equal(c.blockedFor('alice', 1100), 0, 'a new window starts at one event')
  c.clear('alice')
  t.equal(c.blockedFor('alice', 1100), 0)
})

t.test('take counts and says how long to wait once over the budget', async (t) => {
  const c = new FixedWindowCounter(2, 1000)
  t.equal(c.take('svc', 0), 0)
  t.equal(c.take('svc', 10), 0)
  t.equal(c.take('svc', 250), 750, 'the third call waits for the window')
  t.equal(c.take('svc', 1000), 0, 'a new window')
})

t.test('the counter memory is bounded (a key spray cannot exhaust memory)', async (t) => {
  const c = new FixedWindowCounter(1, 60_000, 1000)
  c.add('target', 0)
  t.ok(c.blockedFor('target', 1) > 0)
  for (let i = 0; i <= 1001; i++) c.add(`spray${i}`, 1)
  t.ok(c.blockedFor('spray1001', 2) > 0, 'the newest key is kept')
  t.equal(c.blockedFor('target', 2), 0, 'the oldest entries were dropped when the table overflowed')
})

t.test('an overflowing table drops expired windows and the oldest ones, not every live one', async (t) => {
  const c = new FixedWindowCounter(1, 1000, 100)
  c.add('expired', 0)
  for (let i = 0; i < 98; i++) c.add(`live${i}`, 500)
  c.add('victim', 600)
  t.ok(c.blockedFor('victim', 700) > 0)
  c.add('newcomer', 1200) // 'expired' is past its window and the table is full: it goes first
  t.ok(c.blockedFor('victim', 1200) > 0, 'a live entry survives the overflow')
  t.ok(c.blockedFor('newcomer', 1200) > 0)
})
