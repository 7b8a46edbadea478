/**
 * Example gateway: the central login server of the demo.
 *
 * Environment:
 *   PORT (3000), HOST (127.0.0.1), DATABASE (gateway.sqlite), SESSION_SECRET (≥ 32 chars),
 *   NODE_ENV (cookies are Secure unless 'development'),
 *   SSO_SERVICES  JSON list of services to register on first start:
 *                 [{ "name", "baseUrl", "eventUrl"?, "secret", "signingSecret" }]
 *   DEMO_USER / DEMO_PASSWORD  a user to create on first start.
 *   INLINE_EVENT_TIMEOUT, EVENT_TIMEOUT, OUTBOX_INTERVAL, BUSY_TIMEOUT (ms) and RETRY_SCHEDULE
 *   (a JSON list of ms) override those gateway options (the fault tests use short ones).
 */
import Fastify from 'fastify'
import fastifySsoGateway from 'fastify-sso-gateway'

interface ServiceSeed {
  name: string
  baseUrl: string
  eventUrl?: string
  protocol?: 'fastify-sso' | 'django-sso'
  secret: string
  signingSecret: string
}

const env = process.env
const port = Number(env.PORT ?? 3000)
const host = env.HOST ?? '127.0.0.1'

const app = Fastify({ logger: { level: env.LOG_LEVEL ?? 'info' } })

await app.register(fastifySsoGateway, {
  sessionSecret: env.SESSION_SECRET ?? '',
  database: env.DATABASE ?? 'gateway.sqlite',
  cookieName: 'demo_gateway_session',
  cookieSecure: env.NODE_ENV !== 'development',
  title: 'Demo single sign-on',
  ...(env.INLINE_EVENT_TIMEOUT === undefined ? {} : { inlineEventTimeout: Number(env.INLINE_EVENT_TIMEOUT) }),
  ...(env.OUTBOX_INTERVAL === undefined ? {} : { outboxInterval: Number(env.OUTBOX_INTERVAL) }),
  ...(env.EVENT_TIMEOUT === undefined ? {} : { eventTimeout: Number(env.EVENT_TIMEOUT) }),
  ...(env.BUSY_TIMEOUT === undefined ? {} : { busyTimeout: Number(env.BUSY_TIMEOUT) }),
  ...(env.RETRY_SCHEDULE === undefined ? {} : { retrySchedule: JSON.parse(env.RETRY_SCHEDULE) as number[] })
})

app.get('/', async (_request, reply) => await reply.redirect('/welcome/'))

await app.ready()

// First start: register the services and the demo user. Later starts find them in the database.
const services = JSON.parse(env.SSO_SERVICES ?? '[]') as ServiceSeed[]
for (const s of services) {
  if (await app.ssoGateway.getService(s.name) === null) {
    await app.ssoGateway.registerService(s)
    app.log.info({ service: s.name }, 'registered demo service')
  }
}
if (env.DEMO_USER !== undefined && env.DEMO_PASSWORD !== undefined && await app.ssoGateway.getUser(env.DEMO_USER) === null) {
  await app.ssoGateway.createUser({ username: env.DEMO_USER, password: env.DEMO_PASSWORD, displayName: 'Alice Example', email: 'alice@example.com' })
  app.log.info({ user: env.DEMO_USER }, 'created demo user')
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port, host })
