import t from 'tap'
import { generateSigningSecret, signWebhook } from 'fastify-sso-protocol'
import type { SsoAccount } from 'fastify-sso-protocol'
import type { DeauthenticateHookContext } from '../src/index.js'
import { audits, Browser, buildApp, SERVICE_TOKEN, sendEvent, signIn, SIGNING_SECRET } from './helpers.js'

const alice = { type: 'update_account', username: 'alice', is_active: true, is_staff: false, is_superuser: false, email: 'a@example.com' }

t.test('a signed update_account reaches onAccount and is acknowledged', async (t) => {
  const seen: SsoAccount[] = []
  const { app } = await buildApp(t, { onAccount: (a, ctx) => { t.equal(ctx.source, 'event'); seen.push(a) } })
  const res = await sendEvent(app, { ...alice, team: 'red' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true })
  t.same(seen, [{ username: 'alice', is_active: true, is_staff: false, is_superuser: false, email: 'a@example.com', team: 'red' }])
  const noSlash = await sendEvent(app, { type: 'update_account', username: 'bob' }, { id: 'x1' })
  t.equal(noSlash.statusCode, 200)
  t.match(seen[1], { username: 'bob', is_active: true, is_staff: false, is_superuser: false }, 'missing flags get defaults')
})

t.test('the path without a trailing slash works', async (t) => {
  const { app } = await buildApp(t)
  const body = JSON.stringify(alice)
  const res = await app.inject({ method: 'POST', url: '/sso/event', headers: { 'content-type': 'application/json', ...signWebhook(SIGNING_SECRET, 'id-1', Math.floor(Date.now() / 1000), body) }, payload: body })
  t.equal(res.statusCode, 200)
})

t.test('bad, missing and stale signatures are refused with 401 JSON', async (t) => {
  let calls = 0
  const { app, logs } = await buildApp(t, { onAccount: () => { calls++ } })
  const body = JSON.stringify(alice)
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, Record<string, string>, string]> = [
    ['missing', {}, 'missing-headers'],
    ['wrong secret', signWebhook(generateSigningSecret(), 'id', now, body), 'bad-signature'],
    ['stale', signWebhook(SIGNING_SECRET, 'id', now - 301, body), 'stale-timestamp'],
    ['future', signWebhook(SIGNING_SECRET, 'id', now + 305, body), 'stale-timestamp'], // margin: the clock may tick before the check
    ['body changed', signWebhook(SIGNING_SECRET, 'id', now, body.replace('a@', 'b@')), 'bad-signature']
  ]
  for (const [name, headers, reason] of cases) {
    const res = await app.inject({ method: 'POST', url: '/sso/event/', headers: { 'content-type': 'application/json', ...headers }, payload: body })
    t.equal(res.statusCode, 401, name)
    t.same(res.json(), { error: `Event refused: ${reason}`, code: 'FST_SSO_SERVICE_BAD_SIGNATURE' }, name)
    t.equal(res.headers['cache-control'], 'no-store')
  }
  const empty = await app.inject({ method: 'POST', url: '/sso/event/', headers: signWebhook(SIGNING_SECRET, 'id', now, body) })
  t.equal(empty.statusCode, 401, 'headers signed for a body that was not sent')
  t.equal(calls, 0)
  t.equal(audits(logs, 'event_rejected').length, cases.length + 1)
})

t.test('the signature is checked over the raw bytes (whitespace matters)', async (t) => {
  const { app } = await buildApp(t)
  const body = JSON.stringify(alice, null, 2)
  const ok = await app.inject({ method: 'POST', url: '/sso/event/', headers: { 'content-type': 'application/json; charset=utf-8', ...signWebhook(SIGNING_SECRET, 'r1', Math.floor(Date.now() / 1000), body) }, payload: body })
  t.equal(ok.statusCode, 200)
  const bad = await app.inject({ method: 'POST', url: '/sso/event/', headers: { 'content-type': 'application/json', ...signWebhook(SIGNING_SECRET, 'r2', Math.floor(Date.now() / 1000), JSON.stringify(alice)) }, payload: body })
  t.equal(bad.statusCode, 401)
})

t.test('two signing secrets are accepted during a rotation', async (t) => {
  const next = generateSigningSecret()
  const { app } = await buildApp(t, { signingSecret: [SIGNING_SECRET, next] })
  t.equal((await sendEvent(app, alice, { secret: SIGNING_SECRET })).statusCode, 200)
  t.equal((await sendEvent(app, alice, { secret: next })).statusCode, 200)
  t.equal((await sendEvent(app, alice, { secret: generateSigningSecret() })).statusCode, 401)
})

t.test('a repeated webhook id is acknowledged but applied once', async (t) => {
  let calls = 0
  const { app, logs } = await buildApp(t, { onAccount: () => { calls++ } })
  const first = await sendEvent(app, alice, { id: 'msg_same' })
  const second = await sendEvent(app, { ...alice, email: 'changed@example.com' }, { id: 'msg_same' })
  t.equal(first.statusCode, 200)
  t.equal(second.statusCode, 200)
  t.same(second.json(), { ok: true })
  t.equal(calls, 1)
  t.equal(audits(logs, 'event_duplicate').length, 1)
})

t.test('concurrent deliveries of one id apply it once', async (t) => {
  let calls = 0
  const { app } = await buildApp(t, {
    onAccount: async () => {
      calls++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })
  const results = await Promise.all([1, 2, 3].map(async () => await sendEvent(app, alice, { id: 'msg_race' })))
  t.same(results.map((r) => r.statusCode), [200, 200, 200])
  t.equal(calls, 1)
})

t.test('an older update_account never overwrites newer data', async (t) => {
  const emails: unknown[] = []
  const { app, logs } = await buildApp(t, { onAccount: (a) => { emails.push(a.email) } })
  const now = Math.floor(Date.now() / 1000)
  t.equal((await sendEvent(app, { ...alice, email: 'new@example.com' }, { timestamp: now })).statusCode, 200)
  const late = await sendEvent(app, { ...alice, email: 'old@example.com' }, { timestamp: now - 60 })
  t.equal(late.statusCode, 200, 'acknowledged, so the gateway stops retrying')
  t.same(emails, ['new@example.com'])
  t.equal(audits(logs, 'event_stale').length, 1)
  t.equal((await sendEvent(app, { ...alice, email: 'newer@example.com' }, { timestamp: now })).statusCode, 200)
  t.same(emails, ['new@example.com', 'newer@example.com'], 'same second still applies')
  t.equal((await sendEvent(app, { ...alice, username: 'bob', email: 'bob@example.com' }, { timestamp: now - 60 })).statusCode, 200)
  t.same(emails.length, 3, 'ordering is per user')
})

t.test('if onAccount throws, 500 and the event can be retried', async (t) => {
  let fail = true
  let applied = 0
  const { app } = await buildApp(t, { onAccount: () => { if (fail) throw new Error('db locked'); applied++ } })
  const res = await sendEvent(app, alice, { id: 'msg_retry' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { error: 'The application could not set up the account', code: 'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED' })
  fail = false
  t.equal((await sendEvent(app, alice, { id: 'msg_retry' })).statusCode, 200)
  t.equal(applied, 1)
})

t.test('deauthenticate ends every session of that user, and only theirs', async (t) => {
  const calls: Array<[string, Omit<DeauthenticateHookContext, 'request' | 'log'>]> = []
  const { app, gateway } = await buildApp(t, {
    database: t.testdir() + '/service.sqlite',
    onDeauthenticate: (username, ctx) => { calls.push([username, { ssoSession: ctx.ssoSession, sessionsEnded: ctx.sessionsEnded, reason: ctx.reason, userId: ctx.userId }]) }
  })
  const a1 = new Browser(app)
  const a2 = new Browser(app)
  const b = new Browser(app)
  await signIn(a1, gateway, { ssoSession: 's1' })
  await signIn(a2, gateway, { ssoSession: 's2' })
  await signIn(b, gateway, { username: 'bob', ssoSession: 's3' })
  t.equal(await app.ssoService.logoutUser('nobody'), 0)
  const res = await sendEvent(app, { type: 'deauthenticate', username: 'alice' })
  t.equal(res.statusCode, 200)
  t.same(calls, [['alice', { ssoSession: null, sessionsEnded: 2, reason: null, userId: null }]])
  t.equal((await a1.request('/sso/test/')).statusCode, 302)
  t.equal((await a2.request('/sso/test/')).statusCode, 302)
  t.equal((await b.request('/sso/test/')).statusCode, 200)
  t.equal((await sendEvent(app, { type: 'deauthenticate', username: 'alice' })).statusCode, 200, 'repeating it is harmless')
})

t.test('deauthenticate with sso_session ends only the sessions of that SSO session', async (t) => {
  const { app, gateway } = await buildApp(t, { database: t.testdir() + '/service.sqlite' })
  const a1 = new Browser(app)
  const a2 = new Browser(app)
  await signIn(a1, gateway, { ssoSession: 's1' })
  await signIn(a2, gateway, { ssoSession: 's2' })
  t.equal((await sendEvent(app, { type: 'deauthenticate', username: 'alice', sso_session: 's1' })).statusCode, 200)
  t.equal((await a1.request('/sso/test/')).statusCode, 302)
  t.equal((await a2.request('/sso/test/')).statusCode, 200)
})

t.test('disabling an account ends its sessions', async (t) => {
  const { app, gateway, logs } = await buildApp(t, { database: t.testdir() + '/service.sqlite' })
  const a = new Browser(app)
  await signIn(a, gateway)
  t.equal((await sendEvent(app, { ...alice, is_active: false })).statusCode, 200)
  t.equal((await a.request('/sso/test/')).statusCode, 302)
  t.match(audits(logs, 'account_updated'), [{ user: 'alice', active: false, sessionsEnded: 1 }])
})

t.test('if onDeauthenticate throws, the gateway gets a 500 and may retry', async (t) => {
  let calls = 0
  const { app } = await buildApp(t, { onDeauthenticate: () => { calls++; if (calls === 1) throw new Error('x') } })
  const res = await sendEvent(app, { type: 'deauthenticate', username: 'alice' }, { id: 'd1' })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { error: 'Internal error', code: 'FST_SSO_SERVICE_INTERNAL' })
  t.equal((await sendEvent(app, { type: 'deauthenticate', username: 'alice' }, { id: 'd1' })).statusCode, 200)
  t.equal(calls, 2)
})

t.test('bad input gets a clear 4xx JSON error, never a 500', async (t) => {
  const { app } = await buildApp(t)
  const now = Math.floor(Date.now() / 1000)
  const send = async (payload: string, contentType = 'application/json'): Promise<{ statusCode: number, body: { error: string, code: string } }> => {
    const res = await app.inject({ method: 'POST', url: '/sso/event/', headers: { 'content-type': contentType, ...signWebhook(SIGNING_SECRET, 'bad-' + Math.random(), now, payload) }, payload })
    return { statusCode: res.statusCode, body: res.json() }
  }
  const poisoned = await send('{"type":"update_account","username":"alice","__proto__":{"isAdmin":true}}')
  t.equal(poisoned.statusCode, 400)
  t.equal(poisoned.body.code, 'FST_ERR_CTP_INVALID_JSON_BODY')
  t.equal((await send('{"type":"update_account","username":"a","constructor":{"prototype":{"x":1}}}')).statusCode, 400)
  t.equal((await send('{not json')).statusCode, 400)
  const unknownType = await send(JSON.stringify({ type: 'delete_everything', username: 'alice' }))
  t.equal(unknownType.statusCode, 400)
  t.match(unknownType.body.error, /type/)
  t.equal((await send(JSON.stringify({ type: 'update_account' }))).statusCode, 400, 'username required')
  t.equal((await send(JSON.stringify({ type: 'update_account', username: 'a', is_active: 'maybe' }))).statusCode, 400)
  t.equal((await send('[]')).statusCode, 400)
  t.equal((await send('username=alice', 'application/x-www-form-urlencoded')).statusCode, 415)
  t.equal((await send('hello', 'text/plain')).statusCode, 415)
  const big = await send(JSON.stringify({ ...alice, pad: 'x'.repeat(70 * 1024) }))
  t.equal(big.statusCode, 413)
  t.match(big.body, { error: String, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
})

t.test('django-sso unsigned events: only with acceptUnsignedEvents and the right token', async (t) => {
  await t.test('refused by default', async (t) => {
    const { app } = await buildApp(t)
    const res = await app.inject({ method: 'POST', url: '/sso/event/', payload: { ...alice, token: SERVICE_TOKEN } })
    t.equal(res.statusCode, 401)
  })
  await t.test('accepted when opted in', async (t) => {
    const seen: SsoAccount[] = []
    const { app, logs } = await buildApp(t, { acceptUnsignedEvents: true, signingSecret: undefined, onAccount: (a) => { seen.push(a) } })
    const ok = await app.inject({ method: 'POST', url: '/sso/event/', payload: { ...alice, token: SERVICE_TOKEN } })
    t.equal(ok.statusCode, 200)
    t.notOk('token' in (seen[0] as object), 'the token is not handed to the app')
    t.equal((await app.inject({ method: 'POST', url: '/sso/event/', payload: { ...alice, token: 'wrong' } })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/sso/event/', payload: alice })).statusCode, 401)
    t.equal((await app.inject({ method: 'POST', url: '/sso/event/' })).statusCode, 401, 'no body at all')
    const signed = await sendEvent(app, alice)
    t.equal(signed.statusCode, 401, 'signed events need a signingSecret')
    t.match(signed.json().error, /not configured/)
    t.equal(seen.length, 1)
    t.notMatch(JSON.stringify(logs), new RegExp(SERVICE_TOKEN))
  })
  await t.test('both forms when both are configured', async (t) => {
    const { app } = await buildApp(t, { acceptUnsignedEvents: true })
    t.equal((await app.inject({ method: 'POST', url: '/sso/event/', payload: { type: 'deauthenticate', username: 'alice', token: SERVICE_TOKEN } })).statusCode, 200)
    t.equal((await sendEvent(app, alice)).statusCode, 200)
    t.equal((await sendEvent(app, alice, { secret: generateSigningSecret() })).statusCode, 401, 'a present but bad signature is not rescued by the unsigned form')
  })
})
