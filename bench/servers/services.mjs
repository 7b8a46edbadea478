// Several fastify-sso-service instances in one process, each its own Fastify app on its own
// port with its own SQLite file (production settings, and the server options we recommend),
// except the per-client sign-in budget, raised so that one load generator on one IP can be measured.
//
// Environment: SERVICES (JSON: [{ port, database, token, signingSecret, sessionSecret }]),
// GATEWAY_URL, LOG_LEVEL. Each app also answers GET /__bench/events: how many events it
// applied and when (epoch ms, sub-ms precision) it last ended sessions for each user.
import { performance } from 'node:perf_hooks'
import Fastify from 'fastify'
import fastifySsoService, { RECOMMENDED_SERVER_OPTIONS } from 'fastify-sso-service'

const env = process.env
const now = () => performance.timeOrigin + performance.now()
const apps = []
for (const [i, s] of JSON.parse(env.SERVICES).entries()) {
  const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger: { level: env.LOG_LEVEL ?? 'info' } })
  const seen = { accounts: 0, deauthenticated: 0, endedAt: {} }
  await app.register(fastifySsoService, {
    gatewayUrl: env.GATEWAY_URL,
    token: s.token,
    signingSecret: s.signingSecret,
    sessionSecret: s.sessionSecret,
    database: s.database,
    cookieName: `bench_service_${i}_session`,
    cookieSecure: false,
    loginRateLimit: { max: 1_000_000_000, timeWindow: 60_000 },
    onAccount: async () => { seen.accounts++ },
    onDeauthenticate: async (username, { sessionsEnded }) => {
      seen.deauthenticated++
      if (sessionsEnded > 0) seen.endedAt[username] = now()
    }
  })
  app.get('/private', { preHandler: app.requireLogin }, async (request) => ({ user: request.ssoUser.username }))
  app.get('/__bench/events', async (request) => {
    const out = { ...seen, endedAt: seen.endedAt }
    if (request.query.reset === '1') {
      seen.accounts = 0
      seen.deauthenticated = 0
      seen.endedAt = {}
    }
    return out
  })
  await app.listen({ port: s.port, host: '127.0.0.1' })
  apps.push(app)
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    Promise.all(apps.map((a) => a.close())).then(() => process.exit(0), () => process.exit(1))
  })
}
