import t from 'tap'
import type { Database } from 'better-sqlite3'
import { hashToken } from 'fastify-sso-protocol'
import { buildApp, call, seed, storeOf } from './helpers.js'

t.test('only a hash of a request token or a service secret is stored', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json().token as string
  const db = storeOf(app).db
  const dump = JSON.stringify([
    db.prepare('SELECT * FROM request_tokens').all(),
    db.prepare('SELECT * FROM services').all()
  ])
  t.notOk(dump.includes(token), 'the request token itself is nowhere')
  t.notOk(dump.includes(secret), 'the service secret itself is nowhere (fastify-sso service)')
  t.ok(dump.includes(hashToken(token)), 'its SHA-256 is the key')
  t.ok(dump.includes(hashToken(secret)))
})
