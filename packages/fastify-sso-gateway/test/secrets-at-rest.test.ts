import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { verifyWebhook } from 'fastify-sso-protocol'
import t from 'tap'
import { buildApp, record } from './helpers.js'

// Risk: signing secrets and django-sso service tokens were stored in plaintext: a copy of the
// database let anyone forge events to every service. With `secretsKey` they are sealed (AES-256-GCM).

const KEY = 'a-secrets-key-from-the-environment-0123456789'
const NEW_KEY = 'a-newer-secrets-key-from-the-environment-xyz'

function stored (file: string): Array<{ name: string, signing_secret: string, django_token: string | null }> {
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare('SELECT name, signing_secret, django_token FROM services ORDER BY name').all() as never
  } finally {
    db.close()
  }
}

t.test('sealed at rest, open in use: events are still signed with the real secret', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const { app, agent } = await buildApp({ database: file, secretsKey: KEY })
  const alpha = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const django = await app.ssoGateway.registerService({ name: 'django', baseUrl: 'http://django.test', protocol: 'django-sso' })
  await app.ssoGateway.createUser({ username: 'alice' })
  const bodies: Array<{ headers: Record<string, string>, body: string }> = []
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (opts) => { bodies.push({ headers: opts.headers as Record<string, string>, body: String(opts.body) }); return { ok: true } }).persist()
  record(agent, 'http://django.test')
  const obtained = await app.inject({ method: 'POST', url: '/sso/obtain/', headers: { 'x-token': alpha.secret, 'content-type': 'application/json' }, payload: { next_url: '/x' } })
  t.equal(obtained.statusCode, 200, 'the service is found by its secret through the sealed store')
  t.equal(await app.ssoGateway.getService('nobody'), null)
  await app.ssoGateway.setServiceEnabled('alpha', true)
  await app.ssoGateway.updateUser('alice', { email: 'a@example.test' })
  await app.ssoGateway.events.flush()
  t.match(verifyWebhook({ secrets: [alpha.signingSecret], headers: bodies[0]!.headers, body: bodies[0]!.body }), { ok: true }, 'signed with the real secret')
  await app.close()

  const rows = stored(file)
  for (const row of rows) t.match(row.signing_secret, /^sealed:v1:/)
  t.match(rows.find((r) => r.name === 'django')?.django_token, /^sealed:v1:/)
  const bytes = readFileSync(file).toString('latin1') + readFileSync(`${file}-wal`, { flag: 'a+' }).toString('latin1')
  for (const secret of [alpha.signingSecret, django.signingSecret, django.secret]) t.notOk(bytes.includes(secret), 'no secret in the file')

  // No key: refused at start (events could not be signed).
  await t.rejects(buildApp({ database: file }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /secretsKey: is required/ })
  // A wrong key: refused, naming the service.
  await t.rejects(buildApp({ database: file, secretsKey: NEW_KEY }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /no key given opens the secrets of service/ })

  // Rotation: the new key first, the old one still opens; every secret is re-sealed with the new one.
  const rotated = await buildApp({ database: file, secretsKey: [NEW_KEY, KEY] })
  t.equal((await rotated.app.ssoGateway.listServices()).length, 2)
  await rotated.app.close()
  const after = await buildApp({ database: file, secretsKey: NEW_KEY })
  t.teardown(() => after.app.close())
  t.pass('the old key is no longer needed')
})

t.test('secrets stored before a key was set are sealed at the first start with one; a sealed value does not open for another service', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const plain = await buildApp({ database: file })
  const alpha = await plain.app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await plain.app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  await plain.app.close()
  t.equal(stored(file).find((r) => r.name === 'alpha')?.signing_secret, alpha.signingSecret, 'plaintext without a key')

  const sealed = await buildApp({ database: file, secretsKey: KEY })
  await sealed.app.ssoGateway.updateService('alpha', { signingSecret: alpha.signingSecret })
  await sealed.app.close()
  t.match(stored(file).find((r) => r.name === 'alpha')?.signing_secret, /^sealed:v1:/, 'sealed at the first start with a key')

  // A sealed value copied into another service's row (the service id is authenticated with it) does not open.
  const db = new Database(file)
  db.prepare("UPDATE services SET signing_secret = (SELECT signing_secret FROM services WHERE name = 'alpha') WHERE name = 'beta'").run()
  db.close()
  await t.rejects(buildApp({ database: file, secretsKey: KEY }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /do not open: the stored value was altered or moved/ })
  await t.rejects(buildApp({ secretsKey: 'too short' }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /secretsKey/ })
})

t.test('a rotated service: its previous signing secret is sealed too, re-sealed only when the key changes', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const previousOf = (): string => {
    const db = new Database(file, { readonly: true })
    try {
      return (db.prepare('SELECT previous FROM services WHERE name = ?').get('alpha') as { previous: string }).previous
    } finally {
      db.close()
    }
  }
  const first = await buildApp({ database: file, secretsKey: KEY })
  const old = await first.app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await first.app.ssoGateway.rotateSecrets('alpha', { overlap: 3_600_000 })
  await first.app.close()
  const sealedPrevious = previousOf()
  t.notOk(sealedPrevious.includes(old.signingSecret), 'the previous signing secret is not stored in plaintext')
  t.match(JSON.parse(sealedPrevious).signingSecret, /^sealed:v1:/)

  const again = await buildApp({ database: file, secretsKey: KEY })
  await again.app.close()
  t.equal(previousOf(), sealedPrevious, 'the same key: nothing is re-sealed')

  const rotated = await buildApp({ database: file, secretsKey: [NEW_KEY, KEY] })
  await rotated.app.close()
  t.not(previousOf(), sealedPrevious, 'a new key: the previous secret is re-sealed with it')
  const after = await buildApp({ database: file, secretsKey: NEW_KEY })
  t.teardown(() => after.app.close())
  t.equal((await after.app.ssoGateway.listServices()).length, 1, 'the old key is no longer needed, the previous secret included')
})
