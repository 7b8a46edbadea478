import t from 'tap'
import Fastify from 'fastify'
import fastifySession from '@fastify/session'
import fastifyCookie from '@fastify/cookie'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import fastifyFormbody from '@fastify/formbody'
import { MockAgent } from 'undici'
import { fastifySsoService, InvalidOptionError, MemoryLimitStore, SessionConflictError } from '../src/index.js'
import defaultExport from '../src/index.js'
import type { FastifySsoServiceOptions } from '../src/index.js'
import { resolveOptions } from '../src/options.js'
import { buildApp, SESSION_SECRET, SERVICE_TOKEN, SIGNING_SECRET } from './helpers.js'

const valid: FastifySsoServiceOptions = {
  gatewayUrl: 'https://sso.example.com',
  token: SERVICE_TOKEN,
  signingSecret: SIGNING_SECRET,
  sessionSecret: SESSION_SECRET,
  database: ':memory:'
}

async function registerError (options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  app.register(fastifySsoService, options as FastifySsoServiceOptions)
  try {
    await app.ready()
  } catch (err) {
    await app.close()
    return err as Error
  }
  await app.close()
  throw new Error('ready() did not reject')
}

t.test('default and named exports are the same plugin', async (t) => {
  t.equal(defaultExport, fastifySsoService)
})

t.test('defaults are filled in and the result is frozen', async (t) => {
  const o = resolveOptions({ ...valid, database: undefined, signingSecret: [SIGNING_SECRET, SIGNING_SECRET], sessionSecret: [SESSION_SECRET] })
  t.ok(Object.isFrozen(o))
  t.equal(o.gatewayUrl, 'https://sso.example.com')
  t.equal(o.gatewayInternalUrl, 'https://sso.example.com')
  t.equal(o.cookieName, 'sso_service_session')
  t.equal(o.cookieSecure, 'auto', 'Secure when the request came over HTTPS')
  t.equal(o.database, 'sso-service.sqlite')
  t.equal(o.idleTimeout, 30 * 60_000)
  t.equal(o.absoluteTimeout, 12 * 60 * 60_000)
  t.equal(o.requestTimeout, 5000)
  t.equal(o.afterLogoutUrl, '/sso/signed-out/')
  t.equal(o.acceptUnsignedEvents, false)
  t.equal(o.signingSecrets.length, 2)
  t.same(o.sessionSecret, [SESSION_SECRET])
})

t.test('URLs keep a path prefix and lose the trailing slash', async (t) => {
  const o = resolveOptions({ ...valid, gatewayUrl: 'https://example.com/sso/', gatewayInternalUrl: 'http://10.0.0.5:3000' })
  t.equal(o.gatewayUrl, 'https://example.com/sso')
  t.equal(o.gatewayInternalUrl, 'http://10.0.0.5:3000')
})

t.test('a limit store given as `limits` is used as is', async (t) => {
  const store = new MemoryLimitStore()
  t.equal(resolveOptions({ ...valid, limits: store }).limits, store, 'the given store, not a new one')
  t.not(resolveOptions(valid).limits, store)
})

t.test('django-sso mode needs no signing secret', async (t) => {
  const o = resolveOptions({ ...valid, signingSecret: undefined, acceptUnsignedEvents: true })
  t.equal(o.signingSecrets.length, 0)
  t.equal(o.acceptUnsignedEvents, true)
})

const cases: Array<[string, Record<string, unknown>, RegExp]> = [
  ['gatewayUrl missing', { gatewayUrl: undefined }, /"gatewayUrl".*undefined/],
  ['gatewayUrl garbage', { gatewayUrl: 'not a url' }, /"gatewayUrl".*"not a url"/],
  ['gatewayUrl ftp', { gatewayUrl: 'ftp://x.example' }, /"gatewayUrl".*ftp:/],
  ['gatewayUrl credentials', { gatewayUrl: 'https://u:p@x.example' }, /"gatewayUrl"/],
  ['gatewayUrl number', { gatewayUrl: 42 }, /"gatewayUrl".*42/],
  ['gatewayInternalUrl', { gatewayInternalUrl: 'https://x.example/?q=1' }, /"gatewayInternalUrl"/],
  ['token missing', { token: undefined }, /"token"/],
  ['token empty', { token: '' }, /"token"/],
  ['signingSecret missing', { signingSecret: undefined }, /"signingSecret".*acceptUnsignedEvents/],
  ['signingSecret malformed', { signingSecret: 'secret' }, /"signingSecret"/],
  ['signingSecret empty array', { signingSecret: [] }, /"signingSecret"/],
  ['acceptUnsignedEvents', { acceptUnsignedEvents: 'yes' }, /"acceptUnsignedEvents"/],
  ['sessionSecret short', { sessionSecret: 'short' }, /"sessionSecret"/],
  ['sessionSecret empty array', { sessionSecret: [] }, /"sessionSecret".*<redacted array of 0>/],
  ['sessionSecret object', { sessionSecret: {} }, /"sessionSecret".*<redacted Object>/],
  ['cookieName', { cookieName: 'bad name;' }, /"cookieName"/],
  ['cookieSecure', { cookieSecure: 'true' }, /"cookieSecure"/],
  ['database', { database: '' }, /"database"/],
  ['idleTimeout', { idleTimeout: -1 }, /"idleTimeout".*-1/],
  ['absoluteTimeout', { absoluteTimeout: 1.5 }, /"absoluteTimeout"/],
  ['requestTimeout', { requestTimeout: '5000' }, /"requestTimeout"/],
  ['dispatcher', { dispatcher: {} }, /"dispatcher"/],
  ['dispatcher null', { dispatcher: null }, /"dispatcher".*null/],
  ['afterLogoutUrl', { afterLogoutUrl: 'https://evil.example/' }, /"afterLogoutUrl"/],
  ['onAccount', { onAccount: 'x' }, /"onAccount"/],
  ['onDeauthenticate', { onDeauthenticate: true }, /"onDeauthenticate"/],
  ['token function', { token: () => 'x' }, /"token".*<redacted function>/],
  ['a long value is shortened', { gatewayUrl: 'x'.repeat(300) }, /"x{199}\.\.\.$/],
  ['a misspelt option', { idleTimout: 60_000 }, /invalid option "idleTimout": is not an option; did you mean "idleTimeout"\?/],
  ['a wrongly cased option', { gatewayInternalURL: 'http://10.0.0.5' }, /"gatewayInternalURL": is not an option; did you mean "gatewayInternalUrl"\?/],
  ['an unknown option', { colour: 'blue' }, /"colour": is not an option \(known options: gatewayUrl, gatewayInternalUrl, token,/]
]

for (const [name, patch, message] of cases) {
  t.test(`invalid option: ${name}`, async (t) => {
    const err = await registerError({ ...valid, ...patch })
    t.type(err, InvalidOptionError)
    t.equal(err.code, 'FST_SSO_SERVICE_INVALID_OPTION')
    t.match(err.message, message)
  })
}

t.test('options that are not an object are refused', async (t) => {
  t.throws(() => resolveOptions(null as unknown as FastifySsoServiceOptions), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: /"options".*null/ })
})

t.test('secrets are never echoed in option errors, whatever their type', async (t) => {
  const bad: Array<Record<string, unknown>> = [
    { sessionSecret: 'hunter2-short' },
    { sessionSecret: ['hunter2-short'] },
    { sessionSecret: [SESSION_SECRET, 'hunter2-short'] },
    { sessionSecret: Buffer.from('hunter2-as-a-buffer-of-more-than-32-bytes') },
    { sessionSecret: { value: 'hunter2' } },
    { signingSecret: 'whsec_hunter2' },
    { signingSecret: ['whsec_hunter2'] },
    { signingSecret: { key: 'hunter2' } },
    { token: ['hunter2'] },
    { token: Buffer.from('hunter2') }
  ]
  for (const patch of bad) {
    const err = await registerError({ ...valid, ...patch })
    t.equal(err.code, 'FST_SSO_SERVICE_INVALID_OPTION')
    t.notMatch(err.message, /hunter2|aHVudGVy|104,117/, `${Object.keys(patch)[0]}: ${err.message}`)
  }
})

t.test("Fastify's own register options are not refused", async (t) => {
  const { app } = await buildApp(t, { prefix: '/app', logLevel: 'warn' } as never)
  t.ok(app.hasPlugin('fastify-sso-service'), 'registered')
})

t.test('a database that cannot be opened fails at register', async (t) => {
  const err = await registerError({ ...valid, database: t.testdirName + '/no/such/dir/db.sqlite' })
  t.equal(err.code, 'FST_SSO_SERVICE_INVALID_OPTION')
  t.match(err.message, /"database".*cannot open/)
})

t.test('an app that registered @fastify/session itself gets a clear error', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET })
  app.register(fastifySsoService, valid)
  await t.rejects(async () => { await app.ready() }, SessionConflictError)
  await app.close()
  const app2 = Fastify()
  await app2.register(fastifyCookie)
  await app2.register(fastifyCsrfProtection)
  app2.register(fastifySsoService, valid)
  await t.rejects(async () => { await app2.ready() }, { code: 'FST_SSO_SERVICE_SESSION_CONFLICT', message: /csrf-protection/ })
  await app2.close()
})

t.test('cookie and formbody already registered by the app are reused', async (t) => {
  const { app } = await buildApp(t, {}, async (app) => {
    await app.register(fastifyCookie)
    await app.register(fastifyFormbody)
  })
  t.ok(app.hasPlugin('fastify-sso-service'))
})

t.test('works with the global dispatcher when none is given', async (t) => {
  const app = Fastify()
  await app.register(fastifySsoService, { ...valid, gatewayUrl: 'http://127.0.0.1:9', requestTimeout: 2000 })
  t.teardown(() => app.close())
  const res = await app.inject('/login/')
  t.equal(res.statusCode, 503, 'the closed port is reported, not thrown')
  void MockAgent
})
