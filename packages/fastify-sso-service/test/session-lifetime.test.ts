import t from 'tap'
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { MockAgent } from 'undici'
import fastifySsoService from '../src/index.js'
import { audits, Browser, buildApp, GATEWAY, SERVICE_TOKEN, SESSION_SECRET, signIn, SIGNING_SECRET } from './helpers.js'

const MINUTE = 60_000

/** Rewrites the timing fields of every stored session of a user, like time passing. */
function age (file: string, user: string, patch: { createdAt?: number, seenAt?: number }): void {
  const db = new Database(file)
  try {
    for (const row of db.prepare('SELECT sid, data FROM sessions WHERE user_key = ?').all(user) as Array<{ sid: string, data: string }>) {
      db.prepare('UPDATE sessions SET data = ? WHERE sid = ?').run(JSON.stringify({ ...JSON.parse(row.data), ...patch }), row.sid)
    }
  } finally {
    db.close()
  }
}

function stored (file: string, user: string): Array<Record<string, unknown>> {
  const db = new Database(file, { readonly: true })
  try {
    return (db.prepare('SELECT data FROM sessions WHERE user_key = ?').all(user) as Array<{ data: string }>).map((r) => JSON.parse(r.data) as Record<string, unknown>)
  } finally {
    db.close()
  }
}

t.test('sessions live in the SQLite file, indexed by user, with secure cookie flags', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { app, gateway } = await buildApp(t, { database: file })
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const rows = stored(file, 'alice')
  t.equal(rows.length, 1)
  t.match(rows[0], { user: 'alice', sso: 'sso-session-1', createdAt: Number, seenAt: Number })
  const db = new Database(file, { readonly: true })
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  db.close()
})

t.test('the cookie is Secure over HTTPS, and never sent over plain HTTP', async (t) => {
  const app = Fastify({ trustProxy: true })
  const agent = new MockAgent()
  agent.disableNetConnect()
  agent.get(GATEWAY).intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok' }).times(2)
  await app.register(fastifySsoService, { gatewayUrl: GATEWAY, token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET, database: ':memory:', dispatcher: agent, cookieSecure: true })
  t.teardown(async () => { await app.close(); await agent.close() })
  const https = await app.inject({ url: '/login/', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(https.statusCode, 302)
  t.match(https.cookies, [{ name: 'sso_service_session', secure: true, httpOnly: true, sameSite: 'Lax' }])
  const http = await app.inject({ url: '/login/' })
  t.equal(http.cookies.length, 0, 'no Secure cookie over plain http')
})

t.test('an idle session ends server-side', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { app, gateway, logs } = await buildApp(t, { database: file })
  const browser = new Browser(app)
  await signIn(browser, gateway)
  age(file, 'alice', { seenAt: Date.now() - 31 * MINUTE })
  const res = await browser.request('/sso/test/')
  t.equal(res.statusCode, 302)
  t.equal(stored(file, 'alice').length, 0, 'the expired session is gone from the store')
  t.match(audits(logs, 'session_expired'), [{ user: 'alice' }])
})

t.test('a busy session still ends at the absolute timeout', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { app, gateway } = await buildApp(t, { database: file, absoluteTimeout: 60 * MINUTE })
  const browser = new Browser(app)
  await signIn(browser, gateway)
  age(file, 'alice', { createdAt: Date.now() - 61 * MINUTE, seenAt: Date.now() - 1000 })
  t.equal((await browser.request('/sso/test/')).statusCode, 302)
})

t.test('use refreshes seenAt at most once a minute', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { app, gateway } = await buildApp(t, { database: file })
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const old = Date.now() - 5 * MINUTE
  age(file, 'alice', { seenAt: old })
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  const seen = stored(file, 'alice')[0]?.seenAt as number
  t.ok(seen > old + 4 * MINUTE, 'seenAt moved forward')
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  t.equal(stored(file, 'alice')[0]?.seenAt, seen, 'not rewritten within the minute')
})

t.test('a sign-in left pending too long expires too', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { app, gateway } = await buildApp(t, { database: file, idleTimeout: 10 * MINUTE })
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok' })
  const browser = new Browser(app)
  await browser.request('/login/')
  const db = new Database(file)
  const row = db.prepare('SELECT sid, data FROM sessions').get() as { sid: string, data: string }
  db.prepare('UPDATE sessions SET data = ? WHERE sid = ?').run(JSON.stringify({ ...JSON.parse(row.data), seenAt: Date.now() - 11 * MINUTE }), row.sid)
  db.close()
  const res = await browser.request('/sso/accept/')
  t.equal(res.statusCode, 400, 'the stale request is no longer bound to this browser')
})

t.test('logoutUser ends every session of a user', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { app, gateway, logs } = await buildApp(t, { database: file })
  const a = new Browser(app)
  const b = new Browser(app)
  await signIn(a, gateway)
  await signIn(b, gateway)
  t.equal(await app.ssoService.logoutUser('alice'), 2)
  t.equal((await a.request('/sso/test/')).statusCode, 302)
  t.equal((await b.request('/sso/test/')).statusCode, 302)
  t.match(audits(logs, 'logout_user'), [{ user: 'alice', sessionsEnded: 2 }])
})

t.test('sessions survive a restart on the same file', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const first = await buildApp(t, { database: file })
  const browser = new Browser(first.app)
  await signIn(browser, first.gateway)
  await first.app.close()
  const second = await buildApp(t, { database: file })
  const again = new Browser(second.app)
  for (const [k, v] of browser.cookies) again.cookies.set(k, v)
  const res = await again.request('/sso/test/')
  t.equal(res.statusCode, 200)
  t.equal(res.json().user.username, 'alice')
})
