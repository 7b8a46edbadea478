import Database from 'better-sqlite3'
import Fastify, { type FastifyInstance } from 'fastify'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import fastifySsoGateway, { RECOMMENDED_SERVER_OPTIONS, SqliteGatewayStore } from '../src/index.js'
import { Browser, logLines, PASSWORD } from './helpers.js'

/** `fastify.register(fastifySsoGateway)` with no options at all, as the design's own usage. */
async function bare (): Promise<{ app: FastifyInstance, lines: Array<Record<string, unknown>> }> {
  const { lines, server } = logLines()
  const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, ...server, logger: { ...(server.logger as object), level: 'warn' } })
  await app.register(fastifySsoGateway)
  await app.ready()
  return { app, lines }
}

t.test('register with no options: a SQLite file in the working folder, a generated secret kept there, one warning', async (t) => {
  const dir = t.testdir({})
  const cwd = process.cwd()
  process.chdir(dir)
  t.teardown(() => { process.chdir(cwd) })

  const first = await bare()
  t.ok(existsSync(join(dir, 'sso-gateway.sqlite')), 'the database is sso-gateway.sqlite in the working folder')
  const warnings = first.lines.filter((l) => (l.level as number) >= 40)
  t.equal(warnings.length, 1, 'exactly one warning')
  t.match(warnings[0]?.msg, /no sessionSecret option.*generated on first start and kept in the database \(sso-gateway\.sqlite.*for production set sessionSecret.*NODE_ENV=production/)
  await first.app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  const browser = new Browser(first.app)
  const form = await browser.request('GET', '/login/')
  t.equal((await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })).statusCode, 303, 'signs in over plain http')
  await first.app.close()

  const db = new Database(join(dir, 'sso-gateway.sqlite'), { readonly: true })
  const stored = (db.prepare("SELECT value FROM settings WHERE key = 'session_secret'").get() as { value: string }).value
  db.close()
  t.ok(stored.length >= 32, 'the secret is kept in the database')
  t.notOk(first.lines.some((l) => JSON.stringify(l).includes(stored)), 'and never logged')

  const second = await bare()
  t.teardown(() => second.app.close())
  const again = new Browser(second.app)
  for (const [k, v] of browser.cookies) again.cookies.set(k, v)
  t.match((await again.request('GET', '/welcome/')).body, /Signed in as <strong id="who">alice/, 'after a restart the same secret still reads the session cookie')
  const db2 = new Database(join(dir, 'sso-gateway.sqlite'), { readonly: true })
  t.equal((db2.prepare("SELECT value FROM settings WHERE key = 'session_secret'").get() as { value: string }).value, stored, 'generated once')
  db2.close()
})

t.test('with NODE_ENV=production, no sessionSecret refuses to start', async (t) => {
  const saved = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => { process.env.NODE_ENV = saved })
  const app = Fastify()
  app.register(fastifySsoGateway, { database: ':memory:' })
  await t.rejects(async () => { await app.ready() }, {
    code: 'FST_SSO_GATEWAY_INVALID_OPTION',
    message: /^Invalid option sessionSecret: is required when NODE_ENV=production/
  })
  await app.close()
})

t.test('a store that cannot keep settings needs an explicit sessionSecret', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  const limited = Object.assign(Object.create(store) as SqliteGatewayStore, { setting: undefined })
  const app = Fastify()
  app.register(fastifySsoGateway, { store: limited })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /sessionSecret: is required with a store that cannot keep settings/ })
  await app.close()
  await store.close()
})

t.test('a custom store that keeps settings: the generated secret goes there, and the warning says so', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  const { lines, server } = logLines()
  const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, ...server })
  await app.register(fastifySsoGateway, { store })
  await app.ready()
  t.teardown(() => app.close())
  const warning = lines.find((l) => (l.level as number) === 40)
  t.match(warning?.msg, /kept in the database \(the store, setting "session_secret"\)/)
  t.equal((await store.setting('session_secret', () => 'not used')).length, 43, 'the generated secret is in the store (256 bits, base64url)')
})
