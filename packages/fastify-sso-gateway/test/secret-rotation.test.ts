// Rotating a service's secrets with an overlap window: the old call secret keeps working and
// events carry both signatures until the window ends; then only the new ones count.
import t from 'tap'
import { verifyWebhook } from 'fastify-sso-protocol'
import { buildApp, call, storeOf } from './helpers.js'

t.test('rotateSecrets: both secrets new, the old ones work until the overlap ends', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const old = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await app.ssoGateway.createUser({ username: 'alice' })
  const seen: Array<{ headers: Record<string, string>, body: string }> = []
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (o) => { seen.push({ headers: o.headers as Record<string, string>, body: String(o.body) }); return { ok: true } }).persist()

  const rotated = await app.ssoGateway.rotateSecrets('alpha', { overlap: 3_600_000 })
  t.ok(rotated.secret !== undefined && rotated.secret !== old.secret, 'a new call secret')
  t.ok(rotated.signingSecret !== undefined && rotated.signingSecret !== old.signingSecret, 'a new signing secret')
  t.ok(rotated.overlapUntil !== null && rotated.overlapUntil > Date.now() + 3_500_000)
  t.equal(rotated.service.overlapUntil, rotated.overlapUntil, 'the service says a rotation is under way')
  t.notOk(JSON.stringify(rotated.service).includes(old.signingSecret), 'no secret in the service record')

  const obtain = async (secret: string): Promise<number> => (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode
  t.equal(await obtain(rotated.secret as string), 200, 'the new call secret works')
  t.equal(await obtain(old.secret), 200, 'the old one too, during the overlap')

  await app.ssoGateway.updateUser('alice', { email: 'a@x.test' })
  await app.ssoGateway.events.flush()
  const event = seen[0]!
  t.match(event.headers['webhook-signature'], /^v1,\S+ v1,\S+$/, 'two signatures')
  for (const [secret, which] of [[rotated.signingSecret, 'new'], [old.signingSecret, 'old']] as Array<[string, string]>) {
    t.match(verifyWebhook({ secrets: [secret], headers: event.headers, body: event.body }), { ok: true }, `verifies with the ${which} signing secret alone`)
  }

  // The window ends (moved into the past here): only the new secrets count. The row is
  // changed behind the store's back, so a change through the store (which drops its service
  // cache, as every change does) makes it seen.
  storeOf(app).db.prepare("UPDATE services SET previous = json_set(previous, '$.until', 0)").run()
  await app.ssoGateway.updateService('alpha', {})
  t.equal(await obtain(old.secret), 401, 'the old call secret is refused')
  t.equal(await obtain(rotated.secret as string), 200)
  t.equal((await app.ssoGateway.getService('alpha'))?.overlapUntil, null)
  await app.ssoGateway.updateUser('alice', { email: 'b@x.test' })
  await app.ssoGateway.events.flush()
  const later = seen[1]!
  t.match(later.headers['webhook-signature'], /^v1,\S+$/, 'one signature')
  t.match(verifyWebhook({ secrets: [old.signingSecret], headers: later.headers, body: later.body }), { ok: false })
  t.match(await app.ssoGateway.auditLog({ kind: 'service_secret_rotated' }), [{ service: 'alpha', actor: null, detail: { rotated: ['secret', 'signingSecret'], overlap: 3_600_000 } }])
})

t.test('rotateSecrets: one secret at a time keeps the other rotation alive; overlap 0 switches at once', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const old = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test', protocol: 'django-sso-2' })
  const obtain = async (secret: string): Promise<number> => (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode

  const first = await app.ssoGateway.rotateSecrets('alpha', { signingSecret: false })
  t.equal(first.signingSecret, undefined)
  t.equal(await obtain(old.secret), 200)
  const second = await app.ssoGateway.rotateSecrets('alpha', { secret: false, overlap: 60_000 })
  t.equal(second.secret, undefined)
  t.equal(await obtain(old.secret), 200, 'the call secret rotated first still works')
  t.equal(second.overlapUntil, first.overlapUntil, 'the longer window is kept')
  t.equal((await storeOf(app).services.byName('alpha'))?.djangoToken, first.secret, 'a django-sso service sends the new secret in its events')

  const now = await app.ssoGateway.rotateSecrets('alpha', { signingSecret: false, overlap: 0 })
  t.equal(now.overlapUntil, null)
  t.equal(await obtain(first.secret as string), 401, 'the previous secret stops at once')
  t.equal(await obtain(old.secret), 401)
  t.equal(await obtain(now.secret as string), 200)
  t.match((await storeOf(app).services.byName('alpha'))?.previous, { tokenHash: null, signingSecret: /^whsec_/ }, 'the signing overlap is kept')
  const quiet = await app.ssoGateway.rotateSecrets('alpha', { secret: false, overlap: 0 })
  t.equal(quiet.overlapUntil, null)
  t.match((await storeOf(app).services.byName('alpha'))?.previous, { tokenHash: null, signingSecret: null })
  await app.ssoGateway.updateService('alpha', {})
  const clean = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  t.match(await app.ssoGateway.rotateSecrets('beta', { overlap: 0 }), { overlapUntil: null, secret: String })
  t.equal(await obtain(clean.secret), 401)

  await t.rejects(app.ssoGateway.rotateSecrets('alpha', { secret: false, signingSecret: false }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  await t.rejects(app.ssoGateway.rotateSecrets('alpha', { overlap: -1 }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE', message: /overlap/ })
  await t.rejects(app.ssoGateway.rotateSecrets('alpha', { overlap: 1.5 }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  await t.rejects(app.ssoGateway.rotateSecrets('nope'), { code: 'FST_SSO_GATEWAY_SERVICE_NOT_FOUND' })
  await app.ssoGateway.setServiceEnabled('beta', false)
  t.equal(await obtain(clean.secret), 401, 'a disabled service: refused')
})
