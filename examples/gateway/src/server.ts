/**
 * Example gateway: the central login server of the demo.
 *
 * Environment:
 *   PORT (3000), HOST (127.0.0.1), DATABASE (gateway.sqlite), SESSION_SECRET (≥ 32 chars),
 *   DATABASE_URL  postgres://user:password@host:5432/db: use PostgreSQL instead of the SQLite file
 *                 (several gateway processes can then share it behind a load balancer),
 *   SSO_SERVICES  JSON list of services to register on first start:
 *                 [{ "name", "baseUrl", "eventUrl"?, "secret", "signingSecret", "displayName"?, "logoUrl"? }]
 *   DEMO_USER / DEMO_PASSWORD  a user to create on first start.
 *   INLINE_EVENT_TIMEOUT, EVENT_TIMEOUT, OUTBOX_INTERVAL, BUSY_TIMEOUT, IDLE_TIMEOUT, ABSOLUTE_TIMEOUT,
 *   HOUSEKEEPING_INTERVAL (ms) and RETRY_SCHEDULE (a JSON list of ms) override those gateway
 *   options (the tests use short ones).
 *   ADMIN_TOKEN   enables a small admin API (see admin.ts) that shows the decorator API at work;
 *                 at least 32 characters (a shorter one, the empty string included, stops the start).
 *   GATEWAY_LOGIN_RATE_LIMIT  sign-in form posts one client may make per minute (default 30).
 *   SECRETS_KEY   encrypts the services' signing secrets (and django-sso tokens) in the database.
 *   REDIS_URL     (redis://127.0.0.1:6379) keeps the sign-in throttle, the lockout and the obtain
 *                 budget in Redis, shared by every gateway process (REDIS_PREFIX: its key prefix).
 *   GATEWAY_LOGIN_RATE_LIMIT / OBTAIN_RATE_LIMIT  password POSTs per client address, and sign-ins
 *                 per service, per minute (the options loginRateLimit and obtainRateLimit).
 *   DEMO_ADMIN=1  puts DEMO_USER in the group "admins": the admin console (at /console/) is theirs.
 */
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import fastifySsoGateway, { RECOMMENDED_SERVER_OPTIONS, type FastifySsoGatewayOptions } from 'fastify-sso-gateway'
import { adminRoutes } from './admin.js'

interface ServiceSeed {
  name: string
  baseUrl: string
  eventUrl?: string
  protocol?: 'fastify-sso' | 'django-sso' | 'django-sso-1' | 'django-sso-2'
  secret: string
  signingSecret: string
  displayName?: string
  logoUrl?: string
}

const env = process.env
const port = Number(env.PORT ?? 3000)
const host = env.HOST ?? '127.0.0.1'

/** Duration options (ms) given in the environment. */
function durationsFromEnv (): Partial<FastifySsoGatewayOptions> {
  const names = {
    INLINE_EVENT_TIMEOUT: 'inlineEventTimeout',
    EVENT_TIMEOUT: 'eventTimeout',
    OUTBOX_INTERVAL: 'outboxInterval',
    BUSY_TIMEOUT: 'busyTimeout',
    IDLE_TIMEOUT: 'idleTimeout',
    ABSOLUTE_TIMEOUT: 'absoluteTimeout',
    HOUSEKEEPING_INTERVAL: 'housekeepingInterval'
  } as const
  return Object.fromEntries(Object.entries(names).filter(([key]) => env[key] !== undefined).map(([key, option]) => [option, Number(env[key])]))
}

if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN.length < 32) {
  // An empty token would accept `Authorization: Bearer `: refuse to start rather than open the admin API.
  process.stderr.write('ADMIN_TOKEN must be at least 32 characters (unset it to turn the admin API off)\n')
  process.exit(1)
}

const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger: { level: env.LOG_LEVEL ?? 'info' } })

// Several gateway processes share their limits through one Redis; one process needs none.
const redis = env.REDIS_URL === undefined ? undefined : new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 })
redis?.on('error', (err: Error) => { app.log.warn({ err: err.message }, 'redis connection error') })
if (redis !== undefined) app.addHook('onClose', async () => { redis.disconnect() })
const perMinute = (value: string | undefined): { rate?: { max: number, timeWindow: number } } =>
  value === undefined ? {} : { rate: { max: Number(value), timeWindow: 60_000 } }
const loginRate = perMinute(env.GATEWAY_LOGIN_RATE_LIMIT).rate
const obtainRate = perMinute(env.OBTAIN_RATE_LIMIT).rate

await app.register(fastifySsoGateway, {
  sessionSecret: env.SESSION_SECRET ?? '',
  database: env.DATABASE_URL ?? env.DATABASE ?? 'gateway.sqlite',
  cookieName: 'demo_gateway_session',
  cookieSecure: 'auto', // Secure when the request came over HTTPS (the default)
  title: 'Demo single sign-on',
  // Unknown URLs of this app get the gateway's not-found page (an app-wide choice, so an option).
  notFoundPage: true,
  ...(env.SECRETS_KEY === undefined ? {} : { secretsKey: env.SECRETS_KEY }),
  ...(redis === undefined ? {} : { limits: { redis, ...(env.REDIS_PREFIX === undefined ? {} : { prefix: env.REDIS_PREFIX }) } }),
  ...(loginRate === undefined ? {} : { loginRateLimit: loginRate }),
  ...(obtainRate === undefined ? {} : { obtainRateLimit: obtainRate }),
  // The admin console, for members of the group "admins" (here /console: /admin is the JSON API above).
  admin: { prefix: '/console', role: { group: 'admins' } },
  ...durationsFromEnv(),
  ...(env.RETRY_SCHEDULE === undefined ? {} : { retrySchedule: JSON.parse(env.RETRY_SCHEDULE) as number[] }),
  ...(env.GATEWAY_LOGIN_RATE_LIMIT === undefined ? {} : { loginRateLimit: { max: Number(env.GATEWAY_LOGIN_RATE_LIMIT), timeWindow: 60_000 } })
})

if (env.ADMIN_TOKEN !== undefined) await app.register(adminRoutes, { prefix: '/admin', token: env.ADMIN_TOKEN })

app.get('/', async (_request, reply) => await reply.redirect('/welcome/'))

await app.ready()

/** Runs a first-start step; on a shared PostgreSQL another gateway process may have done it a moment before. */
async function firstStart (what: Record<string, string>, step: () => Promise<unknown>): Promise<void> {
  try {
    await step()
    app.log.info(what, 'first start: created')
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code !== 'FST_SSO_GATEWAY_SERVICE_EXISTS' && code !== 'FST_SSO_GATEWAY_USER_EXISTS') throw err
  }
}

// First start: register the services and the demo user. Later starts find them in the database.
const services = JSON.parse(env.SSO_SERVICES ?? '[]') as ServiceSeed[]
for (const s of services) {
  if (await app.ssoGateway.getService(s.name) === null) await firstStart({ service: s.name }, async () => await app.ssoGateway.registerService(s))
}
if (env.DEMO_USER !== undefined && env.DEMO_PASSWORD !== undefined && await app.ssoGateway.getUser(env.DEMO_USER) === null) {
  await firstStart({ user: env.DEMO_USER }, async () => await app.ssoGateway.createUser({
    username: env.DEMO_USER as string, password: env.DEMO_PASSWORD as string, displayName: 'Alice Example', email: 'alice@example.com'
  }))
}

if (env.DEMO_ADMIN === '1' && env.DEMO_USER !== undefined && !(await app.ssoGateway.groups.of(env.DEMO_USER)).includes('admins')) {
  await app.ssoGateway.groups.create('admins')
  await app.ssoGateway.groups.addMember('admins', env.DEMO_USER)
  app.log.info({ user: env.DEMO_USER }, 'demo user may use the admin console')
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port, host })
