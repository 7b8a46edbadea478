import t from 'tap'
import { FailureCounter } from '../src/routes/login.js'
import { WindowCounter } from '../src/routes/protocol.js'

t.test('the per-account failure counter blocks after max failures within the window', async (t) => {
  const c = new FailureCounter(3, 1000)
  for (let i = 0; i < 3; i++) {
    t.equal(c.blockedFor('alice', 100), 0)
    c.fail('alice', 100)
  }
  t.equal(c.blockedFor('alice', 400), 700, 'blocked until the window ends')
  t.equal(c.blockedFor('bob', 400), 0, 'per account')
  t.equal(c.blockedFor('alice', 1100), 0, 'the window is over')
  c.fail('alice', 1100)
  t.equal(c.blockedFor('alice', 1100), 0, 'a new window starts at one failure')
  c.clear('alice')
  t.equal(c.blockedFor('alice', 1100), 0)
})

t.test('the failure counter memory is bounded (a username spray cannot exhaust memory)', async (t) => {
  const c = new FailureCounter(1, 60_000)
  c.fail('target', 0)
  t.ok(c.blockedFor('target', 1) > 0)
  for (let i = 0; i <= 100_001; i++) c.fail(`spray${i}`, 1)
  t.ok(c.blockedFor('spray100001', 2) > 0, 'the newest key is kept')
  t.equal(c.blockedFor('target', 2), 0, 'older entries were dropped when the table overflowed')
})

t.test('the obtain window counter', async (t) => {
  const c = new WindowCounter(2, 1000)
  t.equal(c.take('svc', 0), 0)
  t.equal(c.take('svc', 10), 0)
  t.equal(c.take('svc', 250), 750, 'the third call waits for the window')
  t.equal(c.take('svc', 1000), 0, 'a new window')
  for (let i = 0; i <= 10_001; i++) c.take(`svc${i}`, 1000)
  t.equal(c.take('svc', 1001), 0, 'memory is bounded: the table starts afresh past 10 000 services')
})

t.test('an overflowing failure table drops expired windows and the oldest ones, not every lockout', async (t) => {
  const c = new FailureCounter(1, 1000)
  c.fail('expired', 0)
  for (let i = 0; i < 99_998; i++) c.fail(`live${i}`, 500)
  c.fail('victim', 600)
  t.ok(c.blockedFor('victim', 700) > 0)
  c.fail('newcomer', 1200) // 'expired' is past its window and the table is full: it goes first
  t.ok(c.blockedFor('victim', 1200) > 0, 'a live lockout survives the overflow')
  t.ok(c.blockedFor('newcomer', 1200) > 0)
})
