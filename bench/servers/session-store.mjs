// A new session per request through @fastify/session: in its in-memory store (STORE=memory),
// in fastify-sso-service's SqliteSessionStore (STORE=sqlite, the database opened as the
// service plugin opens it), or with the whole fastify-sso-service plugin (STORE=plugin).
import Fastify from 'fastify'

const env = process.env
const app = Fastify({ logger: { level: env.LOG_LEVEL ?? 'info' } })
const secret = 'x'.repeat(40)
if (env.STORE === 'plugin') {
  // The whole service plugin (its hooks, CSRF, form parser) around the same store.
  const { default: fastifySsoService } = await import('fastify-sso-service')
  await app.register(fastifySsoService, {
    gatewayUrl: 'http://127.0.0.1:9', token: 'bench-token', signingSecret: 'whsec_' + Buffer.alloc(32, 7).toString('base64'),
    sessionSecret: secret, database: env.DATABASE, cookieName: 'bench_session', cookieSecure: false
  })
} else {
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const { default: fastifySession } = await import('@fastify/session')
  let store
  if (env.STORE === 'sqlite') {
    // fastify-sso-service's SqliteSessionStore on a database opened as the service plugin opens it,
    // registered the way the plugin registers it.
    const { default: Database } = await import('better-sqlite3')
    const { callbackSessionStore, checkpointInBackground, sessionIndexer } = await import('fastify-sso-protocol')
    const { SqliteSessionStore } = await import('fastify-sso-service')
    const db = new Database(env.DATABASE)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('busy_timeout = 5000')
    checkpointInBackground(db)
    const sessions = new SqliteSessionStore({ db })
    const index = sessionIndexer({ idleTimeout: 30 * 60_000, absoluteTimeout: 12 * 60 * 60_000 })
    store = callbackSessionStore({
      get: async (sid) => await sessions.get(sid, Date.now()),
      set: async (sid, session) => { await sessions.set(sid, session, index(session)) },
      destroy: async (sid) => { await sessions.destroy(sid) }
    })
  }
  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret, cookieName: 'bench_session', saveUninitialized: false, rolling: false, ...(store === undefined ? {} : { store }),
    cookie: { httpOnly: true, sameSite: 'lax', secure: false, path: '/' }
  })
}
// What a sign-in stores: a user, an SSO session id, an account, timestamps.
let n = 0
app.get('/new', async (request) => {
  const now = Date.now()
  const i = n++
  request.session.set('user', `user${i}`)
  request.session.set('sso', `sso_${i}`)
  request.session.set('account', { username: `user${i}`, is_active: true, is_staff: false, is_superuser: false, email: `user${i}@example.com` })
  request.session.set('createdAt', now)
  request.session.set('seenAt', now)
  return { ok: true }
})
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
await app.listen({ port: Number(env.PORT), host: '127.0.0.1' })
