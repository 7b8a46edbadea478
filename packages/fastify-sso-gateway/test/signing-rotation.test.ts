import t from 'tap'
import { generateSigningSecret, verifyWebhook } from 'fastify-sso-protocol'
import { buildApp } from './helpers.js'

t.test('the signing secret rotates: events are signed with the new one from then on', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { signingSecret: old } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await app.ssoGateway.createUser({ username: 'alice' })
  const seen: Array<{ headers: Record<string, string>, body: string }> = []
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (o) => { seen.push({ headers: o.headers as Record<string, string>, body: String(o.body) }); return { ok: true } }).persist()

  await t.rejects(app.ssoGateway.updateService('alpha', { signingSecret: 'not-a-secret' }), { code: 'FST_SSO_GATEWAY_INVALID_SERVICE' })
  const fresh = generateSigningSecret()
  await app.ssoGateway.updateService('alpha', { signingSecret: fresh })
  await app.ssoGateway.updateUser('alice', { email: 'a@example.test' })
  await app.ssoGateway.events.flush()
  t.equal(seen.length, 1)
  const event = seen[0]!
  t.match(verifyWebhook({ secrets: [fresh], headers: event.headers, body: event.body }), { ok: true }, 'signed with the new secret')
  t.match(verifyWebhook({ secrets: [old], headers: event.headers, body: event.body }), { ok: false }, 'not with the old one')
  t.match(verifyWebhook({ secrets: [old, fresh], headers: event.headers, body: event.body }), { ok: true }, 'a service holding both accepts it')
})
