// The bench's gateway: fastify-sso-gateway with production settings (argon2id at the OWASP
// minimum, SQLite in WAL, default lifetimes), except the per-service obtain budget and the
// per-IP password budget, raised so that one load generator on one IP can be measured.
//
// Environment: PORT, DATABASE (SQLite file) or DATABASE_URL (PostgreSQL, when the gateway has a
// PostgresGatewayStore), SESSION_SECRET, SERVICES (JSON: [{ name, baseUrl, eventUrl,
// secret, signingSecret }]), USERS (how many users bench0..n-1), PASSWORD, LOG_LEVEL,
// BENCH_DEBUG=1 adds /__bench/* routes (event-loop delay, memory, session clones, outbox drain).
import { createHmac, randomBytes } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify from 'fastify'
import * as gatewayPackage from 'fastify-sso-gateway'
import { generateToken, hashToken, sessionIndexer } from 'fastify-sso-protocol'

const { default: fastifySsoGateway, RECOMMENDED_SERVER_OPTIONS, SqliteGatewayStore } = gatewayPackage
const env = process.env
const lifetime = { idleTimeout: 30 * 60_000, absoluteTimeout: 12 * 60 * 60_000 }
let store
if (env.DATABASE_URL !== undefined) {
  const { PostgresGatewayStore } = gatewayPackage
  if (PostgresGatewayStore === undefined) throw new Error('DATABASE_URL given, but this fastify-sso-gateway has no PostgresGatewayStore')
  store = new PostgresGatewayStore({ connectionString: env.DATABASE_URL })
} else {
  store = new SqliteGatewayStore({ filename: env.DATABASE })
}
const sqlite = store.db !== undefined && typeof store.db.prepare === 'function'
const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger: { level: env.LOG_LEVEL ?? 'info' } })

await app.register(fastifySsoGateway, {
  sessionSecret: env.SESSION_SECRET,
  store,
  cookieName: 'bench_gateway_session',
  cookieSecure: false,
  ...lifetime,
  // Tokens are prepared ahead of the get/make_used run: give them time to wait for it.
  authenticatedTokenTtl: 10 * 60_000,
  obtainRateLimit: { max: 1_000_000_000, timeWindow: 60_000 },
  loginRateLimit: { max: 1_000_000_000, timeWindow: 60_000 }
})
if (env.BENCH_DEBUG === '1') {
  const eld = monitorEventLoopDelay({ resolution: 5 })
  eld.enable()
  const ms = (ns) => Math.round(ns / 1e4) / 100
  app.get('/__bench/ping', async () => ({ ok: true }))
  // Waits (at most timeoutMs) until the outbox has delivered everything due: a window's
  // background events (update_account at each sign-in) are billed to it, not to the next one.
  app.post('/__bench/settle', async (request) => {
    const timeoutMs = Number(request.body?.timeoutMs ?? 120_000)
    const t0 = performance.now()
    let timer
    const drained = await Promise.race([
      app.ssoGateway.events.flush().then(() => true),
      new Promise((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
    ])
    clearTimeout(timer)
    const pending = (await app.ssoGateway.events.status()).reduce((a, s) => a + s.pending, 0)
    return { drained, settleMs: performance.now() - t0, pending, timeoutMs }
  })
  // Authenticated request tokens for the get + make_used row, made fast (the row measures those two
  // endpoints; how a token got authenticated is measured by the hop): token k has next_url /p/k.
  app.post('/__bench/tokens', async (request) => {
    const { count, from = 0, service: name, username } = request.body
    const service = await store.services.byName(name)
    const user = await store.users.byUsername(username)
    const now = Date.now()
    const out = []
    const sso = 'sso_' + generateToken(18)
    const rows = []
    for (let k = 0; k < count; k++) {
      const token = generateToken()
      const code = generateToken()
      rows.push({ hash: hashToken(token), codeHash: hashToken(code), k: from + k })
      out.push([token, code])
    }
    const auth = { userId: user.id, ssoSession: sso, sessionEndsAt: now + lifetime.absoluteTimeout, authAt: now, expiresAt: now + 30 * 60_000 }
    if (sqlite) {
      const insert = store.db.prepare(`INSERT INTO request_tokens (hash, service_id, next_url, status, user_id, sso_session, session_ends_at, prompt, auth_at, code_hash, expires_at, created_at)
        VALUES (?, ?, ?, 'authenticated', ?, ?, ?, NULL, ?, ?, ?, ?)`)
      store.db.transaction(() => {
        for (const r of rows) insert.run(r.hash, service.id, `/p/${r.k}`, auth.userId, auth.ssoSession, auth.sessionEndsAt, auth.authAt, r.codeHash, auth.expiresAt, now)
      })()
    } else {
      // 50 at a time: a store on a network database answers each in a round trip.
      for (let i = 0; i < rows.length; i += 50) {
        await Promise.all(rows.slice(i, i + 50).map(async (r) => {
          await store.tokens.create({ hash: r.hash, serviceId: service.id, nextUrl: `/p/${r.k}`, prompt: null, expiresAt: now + 60_000, createdAt: now })
          await store.tokens.authenticate(r.hash, { ...auth, codeHash: r.codeHash }, now)
        }))
      }
    }
    return { tokens: out }
  })
  app.get('/__bench/status', async () => await app.ssoGateway.events.status())
  app.get('/__bench/stats', async (request) => {
    const mem = process.memoryUsage()
    const out = {
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      eventLoopDelay: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), mean: ms(eld.mean), count: eld.count },
      sessions: sqlite ? store.db.prepare('SELECT count(*) AS n FROM gateway_sessions').get().n : null
    }
    if (request.query.reset === '1') eld.reset()
    return out
  })
  // Clones a real signed-in session `count` times through the gateway's own session store
  // (same table, same index function); answers the signed cookie values.
  const index = sessionIndexer(lifetime)
  app.post('/__bench/sessions', async (request) => {
    const { count, sid } = request.body
    const template = await store.sessions.get(sid, Date.now())
    if (template == null) throw new Error('no such session')
    const secret = env.SESSION_SECRET
    const cookies = []
    const now = Date.now()
    const insert = store.db.prepare('INSERT INTO gateway_sessions (sid, data, expires_at, user_key, sso_session) VALUES (?, ?, ?, ?, ?)')
    store.db.transaction(() => {
      for (let i = 0; i < count; i++) {
        const id = randomBytes(24).toString('base64url')
        const clone = { ...template, sso: 'sso_' + generateToken(18), createdAt: now, seenAt: now }
        const ix = index(clone)
        insert.run(id, JSON.stringify(clone), ix.expiresAt, ix.user, ix.ssoSession)
        cookies.push(id + '.' + createHmac('sha256', secret).update(id).digest('base64').replace(/=/g, ''))
      }
    })()
    return { cookies }
  })
  // Queues `count` deauthenticate events over every enabled service (distinct users, so nothing
  // waits on per-user ordering), in one transaction; every gateway process then drains them (/__bench/settle).
  app.post('/__bench/enqueue', async (request) => {
    const { count } = request.body
    const services = (await store.services.list()).filter((s) => s.enabled)
    const events = []
    for (let i = 0; i < count; i++) {
      const s = services[i % services.length]
      const username = `drain${Math.floor(i / services.length)}`
      events.push({ id: 'evt_' + generateToken(18), serviceId: s.id, userKey: 'usr_' + username, payload: JSON.stringify({ type: 'deauthenticate', username }) })
    }
    const t0 = performance.now()
    await store.outbox.enqueue(events)
    return { enqueueMs: performance.now() - t0 }
  })
}

await app.ready()

for (const s of JSON.parse(env.SERVICES ?? '[]')) {
  if (await app.ssoGateway.getService(s.name) === null) await app.ssoGateway.registerService(s)
}
// Users: one hashed for real, the others share its PHC string (same cost to verify).
const users = Number(env.USERS ?? 0)
if (users > 0 && await app.ssoGateway.getUser('bench0') === null) {
  await app.ssoGateway.createUser({ username: 'bench0', password: env.PASSWORD, email: 'bench0@example.com' })
  const first = await store.users.byUsername('bench0')
  for (let i = 1; i < users; i++) {
    await store.users.create({
      id: 'usr_' + generateToken(12),
      username: `bench${i}`,
      passwordHash: first.passwordHash,
      isActive: true,
      isStaff: false,
      isSuperuser: false,
      email: `bench${i}@example.com`,
      displayName: `Bench User ${i}`,
      attributes: {}
    })
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
await app.listen({ port: Number(env.PORT), host: '127.0.0.1' })
