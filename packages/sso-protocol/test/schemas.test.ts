import t from 'tap'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import {
  authenticationTokenBodySchema,
  deauthenticateBodySchema,
  errorResponseSchema,
  eventBodySchema,
  getResponseSchema,
  MAX_NEXT_URL_LENGTH,
  MAX_TOKEN_LENGTH,
  MAX_USERNAME_LENGTH,
  obtainBodySchema,
  PATHS
} from '../src/index.js'

// fastify is not a dependency of this package (the plugins bring it), so it is
// loaded from a sibling package that has it: the schemas are then checked by
// the very Ajv set-up (fastify's defaults) that serves them in production.
function requireFromSibling (name: string): unknown {
  for (const sibling of ['fastify-sso-gateway', 'fastify-sso-service']) {
    try {
      return createRequire(fileURLToPath(new URL(`../../${sibling}/package.json`, import.meta.url)))(name)
    } catch {}
  }
  throw new Error(`${name} is not installed in a sibling package`)
}

interface Reply { statusCode: number, json: () => any, body: string }
interface App {
  post: (path: string, opts: object, handler: (req: { body: unknown }) => unknown) => void
  get: (path: string, opts: object, handler: () => unknown) => void
  addContentTypeParser: (type: string, opts: object, parser: (req: unknown, body: string, done: (err: Error | null, body?: unknown) => void) => void) => void
  inject: (opts: object) => Promise<Reply>
  close: () => Promise<void>
}
type AjvClass = new (opts: object) => { compile: (schema: object) => ((data: unknown) => boolean) & { errors?: unknown } }

const fastify = requireFromSibling('fastify') as (opts?: object) => App
const fastifyDir = createRequire(fileURLToPath(new URL('../../fastify-sso-gateway/package.json', import.meta.url))).resolve('fastify')
const ajvCompilerPath = createRequire(fastifyDir).resolve('@fastify/ajv-compiler')
const Ajv = (createRequire(ajvCompilerPath)('ajv') as { default: AjvClass }).default

const schemas = {
  obtainBodySchema,
  authenticationTokenBodySchema,
  deauthenticateBodySchema,
  eventBodySchema,
  getResponseSchema,
  errorResponseSchema
}

t.test('every schema compiles under strict Ajv', async (t) => {
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true })
  for (const [name, schema] of Object.entries(schemas)) {
    t.doesNotThrow(() => ajv.compile(schema), name)
  }
})

t.test('PATHS and limits', async (t) => {
  for (const path of Object.values(PATHS)) t.match(path, /^\/[a-z_/-]+[a-z]$/, `${path} has no trailing slash`)
  t.equal(PATHS.obtain, '/sso/obtain')
  t.equal(PATHS.makeUsed, '/sso/make_used')
  t.equal(MAX_TOKEN_LENGTH, 256)
  t.equal(MAX_USERNAME_LENGTH, 150)
})

// Plain Ajv, no coercion and no stripping: the schemas' own verdicts.
t.test('valid and invalid bodies (strict Ajv)', async (t) => {
  const ajv = new Ajv({ allErrors: true, allowUnionTypes: true })
  const long = (n: number) => 'x'.repeat(n)
  const table: Array<[keyof typeof schemas, unknown, boolean, string]> = [
    ['obtainBodySchema', { token: 't', next_url: '/x' }, true, 'token and next_url'],
    ['obtainBodySchema', { next_url: '/x' }, true, 'token in X-Token instead'],
    ['obtainBodySchema', { token: 't' }, false, 'next_url missing'],
    ['obtainBodySchema', { token: 't', next_url: '' }, false, 'empty next_url'],
    ['obtainBodySchema', { next_url: long(MAX_NEXT_URL_LENGTH) }, true, 'next_url at the limit'],
    ['obtainBodySchema', { next_url: long(MAX_NEXT_URL_LENGTH + 1) }, false, 'next_url over the limit'],
    ['obtainBodySchema', { next_url: 5 }, false, 'next_url a number'],
    ['obtainBodySchema', { next_url: ['/x'] }, false, 'next_url an array'],
    ['obtainBodySchema', { token: '', next_url: '/x' }, false, 'empty token'],
    ['obtainBodySchema', { token: long(MAX_TOKEN_LENGTH + 1), next_url: '/x' }, false, 'token over the limit'],
    ['obtainBodySchema', { next_url: '/x', extra: 1 }, false, 'unknown field'],
    ['obtainBodySchema', '/x', false, 'not an object'],
    ['obtainBodySchema', null, false, 'null'],
    ['authenticationTokenBodySchema', { token: 't', authentication_token: 'a' }, true, 'both tokens'],
    ['authenticationTokenBodySchema', { authentication_token: long(MAX_TOKEN_LENGTH) }, true, 'at the limit'],
    ['authenticationTokenBodySchema', { token: 't' }, false, 'authentication_token missing'],
    ['authenticationTokenBodySchema', { authentication_token: '' }, false, 'empty'],
    ['authenticationTokenBodySchema', { authentication_token: long(MAX_TOKEN_LENGTH + 1) }, false, 'over the limit'],
    ['authenticationTokenBodySchema', { authentication_token: { $ne: '' } }, false, 'an object (injection attempt)'],
    ['deauthenticateBodySchema', { token: 't', user_identy: 'alice' }, true, 'user_identy'],
    ['deauthenticateBodySchema', { user_identy: 'alice', sso_session: 'g1' }, true, 'with sso_session'],
    ['deauthenticateBodySchema', { token: 't' }, false, 'user_identy missing'],
    ['deauthenticateBodySchema', { user_identy: '' }, false, 'empty user_identy'],
    ['deauthenticateBodySchema', { user_identy: long(MAX_USERNAME_LENGTH) }, true, 'username at the limit'],
    ['deauthenticateBodySchema', { user_identy: long(MAX_USERNAME_LENGTH + 1) }, false, 'username over the limit'],
    ['deauthenticateBodySchema', { username: 'alice' }, false, 'username is not the wire name'],
    ['eventBodySchema', { type: 'deauthenticate', username: 'alice' }, true, 'deauthenticate'],
    ['eventBodySchema', { type: 'deauthenticate', username: 'alice', sso_session: 'g1', token: 't' }, true, 'deauthenticate one SSO session, django-sso token'],
    ['eventBodySchema', { type: 'update_account', username: 'alice', is_active: true, is_staff: false, is_superuser: false }, true, 'update_account'],
    ['eventBodySchema', { type: 'update_account', username: 'alice', is_active: true, email: null, display_name: null, team: 'x' }, true, 'nullable fields and extra attributes'],
    ['eventBodySchema', { type: 'update_account', username: 'alice', email: long(321) }, false, 'email too long'],
    ['eventBodySchema', { type: 'update_account', username: 'alice', is_active: 'yes' }, false, 'a flag not a boolean'],
    ['eventBodySchema', { type: 'delete_everything', username: 'alice' }, false, 'unknown event type'],
    ['eventBodySchema', { username: 'alice' }, false, 'type missing'],
    ['eventBodySchema', { type: 'deauthenticate' }, false, 'username missing'],
    ['eventBodySchema', { type: 'deauthenticate', username: '' }, false, 'empty username'],
    ['eventBodySchema', { type: 'update_account', fields: { user_identy: 'alice', is_active: true } }, true, 'django-sso 2.x update_account'],
    ['eventBodySchema', { type: 'update_account' }, false, 'update_account with neither username nor fields'],
    ['eventBodySchema', { type: 'deauthenticate', user_identy: 'alice' }, true, 'django-sso 2.x deauthenticate'],
    ['eventBodySchema', { type: 'delete_user', user_identy: 'alice' }, true, 'django-sso 2.x delete_user'],
    ['eventBodySchema', { type: 'delete_user' }, false, 'delete_user without user_identy'],
    ['eventBodySchema', { type: 'change_user_identy', old: 'alice', new: 'alicia' }, true, 'django-sso 2.x change_user_identy'],
    ['eventBodySchema', { type: 'change_user_identy', old: 'alice' }, false, 'change_user_identy without new'],
    ['eventBodySchema', { type: 'rename_account', username: 'alicia' }, false, 'rename_account without old_username'],
    ['eventBodySchema', { type: 'update_fields', fields: { team: 'x' }, user_identities: ['alice', 'bob'] }, true, 'django-sso 2.x update_fields'],
    ['eventBodySchema', { type: 'update_fields', fields: { team: 'x' }, user_identities: [] }, false, 'update_fields with nobody'],
    ['eventBodySchema', { type: 'update_fields', user_identities: ['alice'] }, false, 'update_fields without fields'],
    ['getResponseSchema', { authenticated: true, user_identy: 'alice', next_url: '/x' }, true, 'django-sso fields'],
    ['getResponseSchema', { authenticated: true, user_identy: 'alice', next_url: '/x', sso_session: 'g', user: { username: 'alice', is_active: true, role: 'x' } }, true, 'with extras'],
    ['getResponseSchema', { authenticated: true, user_identy: 'alice' }, false, 'next_url missing'],
    ['errorResponseSchema', { error: 'no such token' }, true, 'error'],
    ['errorResponseSchema', { error: 'x', code: 'FST_SSO_X' }, true, 'error with code'],
    ['errorResponseSchema', {}, false, 'error missing']
  ]
  const validators = Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, ajv.compile(s)]))
  for (const [schema, body, valid, name] of table) {
    t.equal(validators[schema]?.(body), valid, `${schema}: ${valid ? 'accepts' : 'refuses'} ${name}`)
  }
})

t.test('served by fastify: 400 for bad bodies, as the plugins see them', async (t) => {
  const app = fastify()
  t.teardown(() => app.close())
  // what @fastify/formbody does, so the django-sso form encoding is covered too
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)))
  })
  const echo = (req: { body: unknown }) => req.body
  app.post(PATHS.obtain, { schema: { body: obtainBodySchema } }, echo)
  app.post(PATHS.get, { schema: { body: authenticationTokenBodySchema } }, echo)
  app.post(PATHS.deauthenticate, { schema: { body: deauthenticateBodySchema } }, echo)
  app.post(PATHS.event, { schema: { body: eventBodySchema } }, echo)
  app.get('/get-response', { schema: { response: { 200: getResponseSchema } } },
    () => ({ authenticated: true, user_identy: 'alice', next_url: '/x', secret: 'leak', user: { username: 'alice', is_active: true, team: 'a' } }))
  app.get('/error-response', { schema: { response: { 200: errorResponseSchema } } }, () => ({ error: 'nope', code: 'X', stack: 'leak' }))

  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object })
  const form = (url: string, payload: string) =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/x-www-form-urlencoded' } })

  let res = await post(PATHS.obtain, { token: 't', next_url: '/x' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { token: 't', next_url: '/x' })
  res = await form(PATHS.obtain, 'token=t&next_url=%2Fx%3Fa%3D1')
  t.equal(res.statusCode, 200, 'form-encoded, as django-sso sends it')
  t.same(res.json(), { token: 't', next_url: '/x?a=1' })
  t.equal((await post(PATHS.obtain, { token: 't' })).statusCode, 400, 'next_url missing')
  t.equal((await post(PATHS.obtain, { next_url: 'x'.repeat(MAX_NEXT_URL_LENGTH + 1) })).statusCode, 400, 'next_url too long')
  t.equal((await post(PATHS.obtain, { next_url: { a: 1 } })).statusCode, 400, 'next_url an object')
  // fastify's Ajv defaults: unknown fields are stripped (removeAdditional), scalars coerced
  res = await post(PATHS.obtain, { next_url: '/x', extra: 'dropped' })
  t.equal(res.statusCode, 200, 'unknown fields are not an error under fastify...')
  t.same(res.json(), { next_url: '/x' }, '...they are removed before the handler sees them')
  res = await post(PATHS.obtain, { next_url: 5 })
  t.same([res.statusCode, res.json()], [200, { next_url: '5' }], 'a number is coerced to a string (checkNextUrl refuses it later)')

  t.equal((await post(PATHS.get, { token: 't', authentication_token: 'a' })).statusCode, 200)
  t.equal((await post(PATHS.get, { token: 't' })).statusCode, 400, 'authentication_token missing')
  t.equal((await post(PATHS.get, { authentication_token: 'x'.repeat(MAX_TOKEN_LENGTH + 1) })).statusCode, 400, 'token too long')
  t.equal((await form(PATHS.get, 'token=t&authentication_token=')).statusCode, 400, 'empty form field')

  t.equal((await form(PATHS.deauthenticate, 'token=t&user_identy=alice')).statusCode, 200)
  t.equal((await post(PATHS.deauthenticate, { token: 't' })).statusCode, 400)
  t.equal((await post(PATHS.deauthenticate, { user_identy: 'x'.repeat(MAX_USERNAME_LENGTH + 1) })).statusCode, 400)

  res = await post(PATHS.event, { type: 'update_account', username: 'alice', is_active: true, is_staff: false, is_superuser: false, team: 'x' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().team, 'x', 'extra account attributes reach the handler')
  t.equal((await post(PATHS.event, { type: 'other', username: 'alice' })).statusCode, 400, 'unknown event type')
  t.equal((await post(PATHS.event, { type: 'deauthenticate' })).statusCode, 400, 'username missing')
  t.equal((await post(PATHS.event, { type: 'update_account', username: 'alice', is_active: [] })).statusCode, 400, 'flag not a boolean')
  res = await post(PATHS.event, { type: 'update_account', username: 'alice', is_active: 'true' })
  t.same([res.statusCode, res.json().is_active], [200, true], 'form-style "true" is coerced to a boolean')
  res = await app.inject({ method: 'POST', url: PATHS.event, payload: 'not json', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 400, 'not JSON')

  res = await app.inject({ method: 'GET', url: '/get-response' })
  t.same(res.json(), { authenticated: true, user_identy: 'alice', next_url: '/x', user: { username: 'alice', is_active: true, team: 'a' } },
    'response serialisation drops unknown top-level fields and keeps user attributes')
  res = await app.inject({ method: 'GET', url: '/error-response' })
  t.same(res.json(), { error: 'nope', code: 'X' }, 'error serialisation drops everything else')
})
