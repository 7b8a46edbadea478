import t from 'tap'
import {
  generateSigningSecret,
  generateToken,
  hashToken,
  isSigningSecret,
  safeEqual,
  SIGNING_SECRET_PREFIX,
  TOKEN_BYTES
} from '../src/index.js'

t.test('tokens carry 256 bits and hash to a different value', async (t) => {
  const a = generateToken()
  t.match(a, /^[A-Za-z0-9_-]{43}$/)
  t.not(hashToken(a), a)
  t.ok(safeEqual(a, a))
  t.notOk(safeEqual(a, a + 'x'))
})

t.test('generateToken: format, size and entropy', async (t) => {
  t.equal(TOKEN_BYTES, 32)
  const tokens = Array.from({ length: 2000 }, () => generateToken())
  t.equal(new Set(tokens).size, tokens.length, 'no repeats in 2000 tokens')
  for (const token of tokens) {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) t.fail(`not 43 base64url characters: ${token}`)
    if (Buffer.from(token, 'base64url').length !== 32) t.fail(`not 32 bytes: ${token}`)
  }
  // every base64url character shows up, each roughly equally often
  const counts = new Map<string, number>()
  for (const ch of tokens.join('').slice(0, 2000 * 42)) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  t.equal(counts.size, 64, 'all 64 characters appear')
  const expected = (2000 * 42) / 64
  for (const [ch, n] of counts) {
    if (n < expected * 0.7 || n > expected * 1.3) t.fail(`character ${ch} appears ${n} times, expected about ${expected}`)
  }
  t.match(generateToken(16), /^[A-Za-z0-9_-]{22}$/, 'a custom size')
  t.equal(Buffer.from(generateToken(64), 'base64url').length, 64)
  t.equal(Buffer.from(generateToken(5000), 'base64url').length, 5000, 'larger than the pool: drawn on its own')
})

t.test('generateToken: pooled randomness hands each byte out once, across refills', async (t) => {
  // 4 KiB pool: 500 tokens of 32 bytes cross several refills; odd sizes misalign them.
  const raw = Array.from({ length: 500 }, (_, i) => Buffer.from(generateToken(i % 3 === 0 ? 31 : 32), 'base64url'))
  const chunks = new Set<string>()
  for (const b of raw) {
    if (b.every((x) => x === 0)) t.fail('a token of zero bytes')
    // any 16-byte window of one token never shows up in another
    for (let o = 0; o + 16 <= b.length; o += 8) {
      const w = b.subarray(o, o + 16).toString('hex')
      if (chunks.has(w)) t.fail('bytes reused between tokens')
      chunks.add(w)
    }
  }
  t.pass('no bytes reused')
})

t.test('hashToken: deterministic SHA-256, base64url, distinct from the input', async (t) => {
  const token = generateToken()
  t.equal(hashToken(token), hashToken(token), 'deterministic')
  t.match(hashToken(token), /^[A-Za-z0-9_-]{43}$/)
  t.not(hashToken(token), token)
  t.not(hashToken(token), hashToken(token + 'x'))
  // sha256("abc"), a FIPS 180-2 test vector
  t.equal(hashToken('abc'), Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex').toString('base64url'))
  t.not(hashToken(''), '')
})

t.test('safeEqual: equal, unequal, different lengths', async (t) => {
  t.equal(safeEqual('secret', 'secret'), true)
  t.equal(safeEqual('', ''), true)
  t.equal(safeEqual('secret', 'Secret'), false, 'case matters')
  t.equal(safeEqual('secret', 'secreT'), false, 'last character differs')
  t.equal(safeEqual('secret', 'secret2'), false, 'longer')
  t.equal(safeEqual('secret', 'secre'), false, 'shorter')
  t.equal(safeEqual('secret', ''), false, 'empty against non-empty')
  t.equal(safeEqual('', 'secret'), false, 'non-empty against empty')
  t.equal(safeEqual('é', 'e\u0301'), false, 'no Unicode normalisation')
  const long = 'x'.repeat(10_000)
  t.equal(safeEqual(long, long), true, 'long strings')
})

t.test('generateSigningSecret / isSigningSecret', async (t) => {
  const secret = generateSigningSecret()
  t.equal(SIGNING_SECRET_PREFIX, 'whsec_')
  t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
  t.equal(Buffer.from(secret.slice(6), 'base64').length, 32)
  t.not(generateSigningSecret(), secret)
  t.equal(isSigningSecret(secret), true, 'a generated secret')
  t.equal(isSigningSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), true, 'the Standard Webhooks example secret (24 bytes)')
  t.equal(isSigningSecret('whsec_' + Buffer.alloc(24).toString('base64')), true, 'exactly 24 bytes')
  t.equal(isSigningSecret('whsec_' + Buffer.alloc(23).toString('base64')), false, '23 bytes: too short')
  t.equal(isSigningSecret('whsec_'), false, 'prefix only')
  t.equal(isSigningSecret(secret.slice(6)), false, 'no prefix')
  t.equal(isSigningSecret('WHSEC_' + secret.slice(6)), false, 'wrong prefix case')
  t.equal(isSigningSecret('whsk_' + secret.slice(6)), false, 'wrong prefix')
  t.equal(isSigningSecret(' ' + secret), false, 'leading space')
  t.equal(isSigningSecret(secret + ' '), false, 'trailing space')
  t.equal(isSigningSecret('whsec_' + Buffer.alloc(32, 0xff).toString('base64url')), false, 'base64url alphabet is not base64')
  t.equal(isSigningSecret('whsec_' + 'A'.repeat(40) + '!!!!'), false, 'bad base64 characters')
  t.equal(isSigningSecret('whsec_' + 'A'.repeat(40) + '==='), false, 'too much padding')
  for (const value of [undefined, null, 42, true, {}, [secret], Buffer.from(secret), Object(secret)]) {
    t.equal(isSigningSecret(value), false, `non-string ${Object.prototype.toString.call(value)}`)
  }
})
