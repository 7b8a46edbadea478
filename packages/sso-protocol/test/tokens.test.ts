import t from 'tap'
import { generateToken, hashToken, safeEqual } from '../src/index.js'

t.test('tokens carry 256 bits and hash to a different value', async (t) => {
  const a = generateToken()
  t.match(a, /^[A-Za-z0-9_-]{43}$/)
  t.not(hashToken(a), a)
  t.ok(safeEqual(a, a))
  t.notOk(safeEqual(a, a + 'x'))
})
