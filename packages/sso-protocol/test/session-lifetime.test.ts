import t from 'tap'
import {
  checkSessionLifetime,
  SEEN_AT_RESOLUTION,
  seenAtResolution,
  sessionExpiresAt,
  sessionIndexer,
  type SessionLifetime
} from '../src/index.js'

const MIN = 60_000
const HOUR = 60 * MIN
const lifetime: SessionLifetime = { idleTimeout: 2 * HOUR, absoluteTimeout: 12 * HOUR }
const t0 = 1_700_000_000_000

t.test('sessionExpiresAt', async (t) => {
  t.equal(sessionExpiresAt({ createdAt: t0 }, lifetime, t0), t0 + 2 * HOUR, 'new session: idle timeout from sign-in')
  t.equal(sessionExpiresAt({ createdAt: t0, seenAt: t0 + HOUR }, lifetime, t0 + HOUR), t0 + 3 * HOUR, 'idle timeout from the last use')
  t.equal(sessionExpiresAt({ createdAt: t0, seenAt: t0 + 11 * HOUR }, lifetime, t0 + 11 * HOUR), t0 + 12 * HOUR,
    'a busy session is capped by the absolute timeout')
  t.equal(sessionExpiresAt({ createdAt: t0, seenAt: t0, endsAt: t0 + MIN }, lifetime, t0), t0 + MIN, 'endsAt caps it earlier')
  t.equal(sessionExpiresAt({ createdAt: t0, seenAt: t0, endsAt: t0 + 100 * HOUR }, lifetime, t0), t0 + 2 * HOUR,
    'a later endsAt does not extend it')
  t.equal(sessionExpiresAt({}, lifetime, t0), t0 + 2 * HOUR, 'anonymous session: idle timeout from now')
  t.equal(sessionExpiresAt({ seenAt: t0 }, lifetime, t0 + HOUR), t0 + 2 * HOUR, 'anonymous, seen: idle from seenAt, no absolute cap')
  t.equal(sessionExpiresAt({ seenAt: t0 }, lifetime, t0 + 100 * HOUR), t0 + 2 * HOUR, 'does not depend on now once seen')
  t.equal(sessionExpiresAt({ endsAt: t0 + MIN }, lifetime, t0), t0 + MIN, 'anonymous with endsAt')
})

t.test('checkSessionLifetime: idle expiry', async (t) => {
  const s = { createdAt: t0, seenAt: t0 }
  t.equal(checkSessionLifetime(s, lifetime, t0), 'fresh')
  t.equal(checkSessionLifetime(s, lifetime, t0 + SEEN_AT_RESOLUTION - 1), 'fresh', 'under the touch resolution')
  t.equal(checkSessionLifetime(s, lifetime, t0 + SEEN_AT_RESOLUTION), 'touch', 'at the touch resolution')
  t.equal(checkSessionLifetime(s, lifetime, t0 + 2 * HOUR - 1), 'touch', 'just before idle expiry')
  t.equal(checkSessionLifetime(s, lifetime, t0 + 2 * HOUR), 'expired', 'at idle expiry')
  t.equal(checkSessionLifetime(s, lifetime, t0 + 2 * HOUR + 1), 'expired', 'after idle expiry')
})

t.test('checkSessionLifetime: a session used steadily lives until the absolute timeout', async (t) => {
  const s: { createdAt: number, seenAt: number } = { createdAt: t0, seenAt: t0 }
  let now = t0
  let touches = 0
  // one request every 30 minutes, the plugin writing seenAt whenever told to
  for (;;) {
    now += 30 * MIN
    const state = checkSessionLifetime(s, lifetime, now)
    if (state === 'expired') break
    if (state === 'touch') { s.seenAt = now; touches++ }
  }
  t.equal(now, t0 + 12 * HOUR, 'ends exactly at the absolute timeout')
  t.equal(touches, 23, 'touched at every request (each 30 minutes apart, beyond the resolution)')
})

t.test('checkSessionLifetime: touch resolution limits writes', async (t) => {
  const s = { createdAt: t0, seenAt: t0 }
  let now = t0
  let touches = 0
  for (let i = 0; i < 600; i++) { // a request every second for ten minutes
    now += 1000
    if (checkSessionLifetime(s, lifetime, now) === 'touch') { s.seenAt = now; touches++ }
  }
  t.equal(touches, 10, 'seenAt written once a minute')
  t.equal(SEEN_AT_RESOLUTION, MIN)
})

t.test('a short idle timeout is touched often enough for use to keep the session alive', async (t) => {
  const short = { idleTimeout: 2000, absoluteTimeout: 60 * MIN }
  t.equal(seenAtResolution(short), 200)
  t.equal(seenAtResolution(lifetime), SEEN_AT_RESOLUTION)
  const s = { createdAt: t0, seenAt: t0 }
  let now = t0
  for (let i = 0; i < 50; i++) { // a request every 300 ms for 15 s
    now += 300
    const state = checkSessionLifetime(s, short, now)
    t.not(state, 'expired')
    if (state === 'touch') s.seenAt = now
  }
  t.equal(checkSessionLifetime(s, short, now + 2000), 'expired', 'idle 2 s after the last use')
})

t.test('checkSessionLifetime: endsAt and anonymous sessions', async (t) => {
  t.equal(checkSessionLifetime({ createdAt: t0, seenAt: t0, endsAt: t0 + 10 }, lifetime, t0 + 9), 'fresh')
  t.equal(checkSessionLifetime({ createdAt: t0, seenAt: t0, endsAt: t0 + 10 }, lifetime, t0 + 10), 'expired', 'at endsAt')
  t.equal(checkSessionLifetime({}, lifetime, t0), 'touch', 'anonymous, never seen: touch (to start its idle clock)')
  t.equal(checkSessionLifetime({ createdAt: t0 }, lifetime, t0), 'touch', 'never seen: touch')
  t.equal(checkSessionLifetime({ seenAt: t0 }, lifetime, t0 + 30 * MIN), 'touch', 'anonymous, seen long ago')
  t.equal(checkSessionLifetime({ seenAt: t0 }, lifetime, t0 + 10), 'fresh', 'anonymous, seen just now')
  t.equal(checkSessionLifetime({ seenAt: t0 }, lifetime, t0 + 2 * HOUR), 'expired', 'anonymous, idle')
  t.equal(checkSessionLifetime({ createdAt: t0, seenAt: t0 + MIN }, lifetime, t0), 'fresh', 'seenAt ahead of the clock (skew): fresh')
  t.equal(checkSessionLifetime({ createdAt: t0 - 13 * HOUR, seenAt: t0 }, lifetime, t0), 'expired', 'past the absolute timeout even if just seen')
})

t.test('sessionIndexer', async (t) => {
  let now = t0
  const indexer = sessionIndexer(lifetime, () => now)
  t.same(indexer({ user: 'alice', sso: 'g1', createdAt: t0, seenAt: t0 }), { user: 'alice', ssoSession: 'g1', expiresAt: t0 + 2 * HOUR })
  t.same(indexer({ createdAt: t0 }), { user: null, ssoSession: null, expiresAt: t0 + 2 * HOUR }, 'anonymous')
  now = t0 + 5 * MIN
  t.same(indexer({}), { user: null, ssoSession: null, expiresAt: t0 + 5 * MIN + 2 * HOUR }, 'no times: idle from the clock')
  t.same(indexer({ user: 42, sso: { id: 'g1' }, createdAt: t0, seenAt: t0, endsAt: t0 + MIN }),
    { user: null, ssoSession: null, expiresAt: t0 + MIN }, 'non-string user/sso are not indexed; endsAt caps')
  const real = sessionIndexer(lifetime)
  const before = Date.now()
  const { expiresAt } = real({})
  t.ok(expiresAt >= before + 2 * HOUR && expiresAt <= Date.now() + 2 * HOUR, 'defaults to Date.now')
})
