import t from 'tap'
import {
  DEFAULT_TIMESTAMP_TOLERANCE,
  generateSigningSecret,
  signWebhook,
  verifyWebhook,
  WEBHOOK_HEADERS,
  type VerifyWebhookOptions
} from '../src/index.js'

const secret = generateSigningSecret()
const other = generateSigningSecret()
const id = 'msg_2Lh9KXPC8sW1bNq0'
const now = 1_700_000_000
const body = JSON.stringify({ type: 'deauthenticate', username: 'alice' })

function verify (overrides: Partial<VerifyWebhookOptions> = {}) {
  return verifyWebhook({ secrets: [secret], headers: signWebhook(secret, id, now, body), body, now, ...overrides })
}

t.test('round trip: the signed headers verify', async (t) => {
  const headers = signWebhook(secret, id, now, body)
  t.same(Object.keys(headers).sort(), [WEBHOOK_HEADERS.id, WEBHOOK_HEADERS.signature, WEBHOOK_HEADERS.timestamp].sort())
  t.equal(headers['webhook-id'], id)
  t.equal(headers['webhook-timestamp'], String(now))
  t.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/)
  t.same(verify(), { ok: true, id, timestamp: now })
  t.same(verify({ body: Buffer.from(body) }), { ok: true, id, timestamp: now }, 'a Buffer body verifies too')
})

t.test('the Standard Webhooks published test vector verifies', async (t) => {
  // standard-webhooks/standard-webhooks, libraries' shared test vector
  const headers = {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
  }
  const vector = { secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], headers, body: '{"test": 2432232314}', now: 1614265330 }
  t.same(verifyWebhook(vector), { ok: true, id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: 1614265330 })
  t.same(signWebhook(vector.secrets[0] as string, headers['webhook-id'], 1614265330, vector.body), headers,
    'signWebhook produces exactly the published headers')
  t.same(verifyWebhook({ ...vector, body: '{"test": 2432232315}' }), { ok: false, reason: 'bad-signature' })
  t.same(verifyWebhook({ ...vector, secrets: ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'] }), { ok: true, id: headers['webhook-id'], timestamp: 1614265330 },
    'a secret without the whsec_ prefix is read as plain base64')
})

t.test('refusals', async (t) => {
  const headers = signWebhook(secret, id, now, body)
  const sig = headers['webhook-signature'] as string
  const bad = { ok: false, reason: 'bad-signature' }
  t.same(verify({ secrets: [other] }), bad, 'wrong secret')
  t.same(verify({ secrets: [] }), bad, 'no secrets at all')
  t.same(verify({ body: body.replace('alice', 'mallory') }), bad, 'tampered body')
  t.same(verify({ body: body + ' ' }), bad, 'one byte appended to the body')
  t.same(verify({ headers: { ...headers, 'webhook-id': id + 'x' } }), bad, 'tampered id')
  t.same(verify({ headers: { ...headers, 'webhook-timestamp': String(now + 1) }, now }), bad, 'tampered timestamp')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig.slice(0, -5) } }), bad, 'truncated signature')
  t.same(verify({ headers: { ...headers, 'webhook-signature': 'v1,' } }), bad, 'empty signature')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig + '!!junk' } }), bad, 'signature with junk appended')
  const urlSafe = 'v1,' + Buffer.from(sig.slice(3), 'base64').toString('base64url')
  t.same(verify({ headers: { ...headers, 'webhook-signature': urlSafe } }), bad, 'base64url spelling of the right bytes')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig.replace('v1,', 'v2,') } }), bad, 'right bytes under v2 are ignored')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig.replace('v1,', 'v1a,') } }), bad, 'unknown version prefix')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig.slice(3) } }), bad, 'no version prefix')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig.replace('v1,', 'v1=') } }), bad, 'v1= instead of v1,')
  t.same(verify({ headers: { ...headers, 'webhook-signature': sig.toUpperCase() } }), bad, 'case changed')
  // an empty key makes HMAC forgeable by anyone: such a secret never verifies
  const forged = signWebhook('whsec_', id, now, body)
  t.same(verify({ secrets: ['whsec_'], headers: forged }), bad, 'empty whsec_ secret')
  t.same(verify({ secrets: [''], headers: signWebhook('', id, now, body) }), bad, 'empty secret')
})

t.test('timestamps', async (t) => {
  const stale = { ok: false, reason: 'stale-timestamp' }
  const at = (ts: number, extra: Partial<VerifyWebhookOptions> = {}) =>
    verify({ headers: signWebhook(secret, id, ts, body), ...extra })
  t.equal(DEFAULT_TIMESTAMP_TOLERANCE, 300)
  t.same(at(now - 300), { ok: true, id, timestamp: now - 300 }, 'exactly at the tolerance in the past')
  t.same(at(now + 300), { ok: true, id, timestamp: now + 300 }, 'exactly at the tolerance in the future')
  t.same(at(now - 301), stale, 'stale')
  t.same(at(now + 301), stale, 'from the future')
  t.same(at(now - 86400), stale, 'a day old (replay)')
  t.same(at(now - 30, { toleranceSeconds: 10 }), stale, 'custom tolerance')
  t.same(at(now - 30, { toleranceSeconds: 60 }), { ok: true, id, timestamp: now - 30 }, 'custom tolerance, inside')
  const real = Math.floor(Date.now() / 1000)
  t.same(verifyWebhook({ secrets: [secret], headers: signWebhook(secret, id, real, body), body }), { ok: true, id, timestamp: real },
    'defaults to the real clock')
  t.same(verifyWebhook({ secrets: [secret], headers: signWebhook(secret, id, now, body), body }), stale,
    'an old timestamp against the real clock')
  const badTs = { ok: false, reason: 'bad-timestamp' }
  for (const ts of ['abc', '', '-1', '1.5', '1e9', ' 1700000000', '0x65', '1700000000000'.padEnd(13, '0'), String(now) + 'a']) {
    t.same(verify({ headers: { ...signWebhook(secret, id, now, body), 'webhook-timestamp': ts } }), badTs, `timestamp ${JSON.stringify(ts)}`)
  }
})

t.test('missing and malformed headers', async (t) => {
  const missing = { ok: false, reason: 'missing-headers' }
  const headers = signWebhook(secret, id, now, body)
  for (const name of Object.values(WEBHOOK_HEADERS)) {
    const without: Record<string, string | undefined> = { ...headers }
    delete without[name]
    t.same(verify({ headers: without }), missing, `without ${name}`)
    t.same(verify({ headers: { ...headers, [name]: undefined } }), missing, `${name} undefined`)
    t.same(verify({ headers: { ...headers, [name]: [headers[name] as string, headers[name] as string] } }), missing,
      `${name} sent twice (array value)`)
  }
  t.same(verify({ headers: {} }), missing, 'no headers')
  t.same(verify({ headers: { ...headers, 'webhook-id': '' } }), missing, 'empty id')
  const longId = 'x'.repeat(257)
  t.same(verify({ headers: signWebhook(secret, longId, now, body) }), missing, 'id over 256 characters')
  const okId = 'x'.repeat(256)
  t.same(verify({ headers: signWebhook(secret, okId, now, body) }), { ok: true, id: okId, timestamp: now }, 'id of 256 characters')
  const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]))
  t.same(verify({ headers: upper }), missing, 'names must be lower case, as Node gives them')
})

t.test('several signatures and secret rotation', async (t) => {
  const good = signWebhook(secret, id, now, body)['webhook-signature'] as string
  const wrong = signWebhook(other, id, now, body)['webhook-signature'] as string
  const withSig = (s: string) => ({ headers: { ...signWebhook(secret, id, now, body), 'webhook-signature': s } })
  const ok = { ok: true, id, timestamp: now }
  t.same(verify(withSig(`${wrong} ${good}`)), ok, 'one valid among several, space-separated')
  t.same(verify(withSig(`${good} ${wrong}`)), ok, 'valid first')
  t.same(verify(withSig(`v2,abc ${good} v1a,xyz`)), ok, 'unknown versions are skipped')
  t.same(verify(withSig(`${wrong} v1,AAAA`)), { ok: false, reason: 'bad-signature' }, 'none valid')
  t.same(verify({ secrets: [other, secret] }), ok, 'the new secret verifies during a rotation')
  t.same(verify({ secrets: [secret, other] }), ok, 'the old secret verifies during a rotation')
  t.same(verify({ secrets: ['', secret] }), ok, 'an empty secret in the list is skipped, not fatal')
  // a sender signing with both secrets during a rotation
  const both = `${signWebhook(other, id, now, body)['webhook-signature']} ${good}`
  t.same(verify({ ...withSig(both), secrets: [other] }), ok, 'receiver with only the new secret')
  t.same(verify({ ...withSig(both), secrets: [secret] }), ok, 'receiver with only the old secret')
})

t.test('during a rotation every secret signs: either one verifies', async (t) => {
  const headers = signWebhook([secret, other], id, now, body)
  const signatures = String(headers['webhook-signature']).split(' ')
  t.equal(signatures.length, 2, 'one signature per secret, space-separated')
  t.same(signatures[0], signWebhook(secret, id, now, body)['webhook-signature'])
  t.same(signatures[1], signWebhook(other, id, now, body)['webhook-signature'])
  t.same(verifyWebhook({ secrets: [other], headers, body, now }), { ok: true, id, timestamp: now }, 'a receiver with only the new secret')
  t.same(verifyWebhook({ secrets: [secret], headers, body, now }), { ok: true, id, timestamp: now }, 'a receiver with only the old secret')
})
