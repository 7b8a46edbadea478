/**
 * Example service B: a small JSON API whose whole context requires a login (one
 * `requireLogin` hook for an encapsulated plugin), the plugin's own sign-out page, a
 * pipeline step of its own that can refuse a sign-in, and a resync endpoint.
 *
 * Environment: as service A (PORT defaults to 3002, DATABASE to service-b.sqlite), plus
 * LOGIN_RATE_LIMIT (sign-ins one client may start per minute, default 30), REDIS_URL and
 * REDIS_PREFIX (as service A), ADMIN_TOKEN (at least 32 characters) to enable `POST /admin/resync` and `GET /accounts.json`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import fastifySsoService, { RECOMMENDED_SERVER_OPTIONS, insertBefore } from 'fastify-sso-service'

const env = process.env
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const signOuts: string[] = []

/** A page in the plugin's page kit: its stylesheet (served at /sso/style.css), header and card. */
function page (body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Service B</title><link rel="stylesheet" href="/sso/style.css"></head>
<body class="sso"><header class="sso-header"><span class="sso-name">Service B</span></header>
<main class="sso-card"><h1>Service B</h1>${body}</main></body></html>`
}

/** Local accounts by the gateway's user id: username and the fields the gateway sends B. */
const accounts = new Map<string, { username: string, fields: Record<string, unknown> }>()

if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN.length < 32) {
  process.stderr.write('ADMIN_TOKEN must be at least 32 characters (unset it to turn the admin routes off)\n')
  process.exit(1)
}
const adminDigest = createHash('sha256').update(`Bearer ${env.ADMIN_TOKEN ?? ''}`).digest()
/** Whether a request carries the admin token (never true without ADMIN_TOKEN). */
const isAdmin = (request: FastifyRequest): boolean => env.ADMIN_TOKEN !== undefined &&
  timingSafeEqual(createHash('sha256').update(String(request.headers.authorization)).digest(), adminDigest)

const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger: { level: env.LOG_LEVEL ?? 'info' } })

// Several processes of this app share their sessions, processed events, known accounts and
// sign-in throttle through one Redis (REDIS_URL; REDIS_PREFIX: key prefix, derived from the token by default).
const redis = env.REDIS_URL === undefined ? undefined : new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 })
redis?.on('error', (err: Error) => { app.log.warn({ err: err.message }, 'redis connection error') })
if (redis !== undefined) app.addHook('onClose', async () => { redis.disconnect() })
const prefix = (suffix: string): { prefix?: string } => env.REDIS_PREFIX === undefined ? {} : { prefix: env.REDIS_PREFIX + suffix }
const shared = redis === undefined ? {} : { store: { redis, ...prefix('') }, limits: { redis, ...prefix('limits:') } }
// No page of this app may be framed by another site (a framed "Sign out everywhere" button is clickjacking).
app.addHook('onSend', async (_request, reply) => {
  reply.header('x-frame-options', 'DENY')
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', "frame-ancestors 'none'")
})

await app.register(fastifySsoService, {
  gatewayUrl: env.GATEWAY_URL ?? 'http://127.0.0.1:3000',
  gatewayInternalUrl: env.GATEWAY_INTERNAL_URL ?? env.GATEWAY_URL ?? 'http://127.0.0.1:3000',
  token: env.SSO_TOKEN ?? '',
  // Behind a django-sso gateway (GATEWAY_KIND=django-sso): unsigned events carrying our token, no keep-alive.
  ...(env.GATEWAY_KIND === 'django-sso' ? { acceptUnsignedEvents: true, keepAliveInterval: 0 } : { signingSecret: env.SSO_SIGNING_SECRET ?? '' }),
  sessionSecret: env.SESSION_SECRET ?? '',
  database: env.DATABASE ?? 'service-b.sqlite',
  cookieName: 'demo_service_b_session',
  ...(env.LOGIN_RATE_LIMIT === undefined ? {} : { loginRateLimit: { max: Number(env.LOGIN_RATE_LIMIT), timeWindow: 60_000 } }),
  cookieSecure: 'auto', // Secure when the request came over HTTPS (the default)
  // The plugin's pages carry this app's name; unknown URLs get the kit's not-found page.
  theme: { name: 'Service B', css: ':root { --sso-accent: #0b6e4f; } @media (prefers-color-scheme: dark) { :root { --sso-accent: #7fd6b0; } }' },
  notFoundPage: true,
  ...shared,
  accounts: {
    find: (ctx) => accounts.get(ctx.account.user_id ?? ctx.account.username),
    create: (ctx) => {
      const local = { username: ctx.account.username, fields: ctx.attributes }
      accounts.set(ctx.account.user_id ?? ctx.account.username, local)
      return local
    },
    update: (ctx) => { Object.assign(ctx.local!, { username: ctx.account.username, fields: ctx.attributes }) },
    rename: (ctx) => {
      // Keyed by user id when the gateway sends one; by username behind a django-sso gateway.
      const local = accounts.get(ctx.userId ?? ctx.oldUsername)
      if (local === undefined) return
      local.username = ctx.username
      if (ctx.userId === null) {
        accounts.delete(ctx.oldUsername)
        accounts.set(ctx.username, local)
      }
    },
    remove: (ctx) => { accounts.delete(ctx.userId ?? ctx.username) }
  },
  // B's own rule, as a pipeline step: accounts flagged `b_blocked` are refused with a message.
  pipeline: (steps) => insertBefore(steps, 'find-account', {
    name: 'b-policy',
    run (ctx) {
      if (ctx.account.b_blocked === true) ctx.refuse('Service B is closed to your account. Ask the service B team.')
    }
  }),
  onDeauthenticate: async (username) => { signOuts.push(username) }
})

// Everything in this context needs a signed-in user: browsers are sent to sign in, API clients get 401.
await app.register(async (api) => {
  api.addHook('preHandler', api.requireLogin)
  api.get('/api/me', async (request) => ({ user: request.ssoUser }))
  api.get('/account', async (request, reply) => {
    const user = request.ssoUser!
    return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page(
      `<p id="who">Signed in as <strong>${esc(user.username)}</strong></p>
<p class="sso-actions"><a class="sso-button sso-button-secondary" id="logout-page" href="/logout/">Sign out…</a></p>
<p class="sso-help">Leave this app, sign out of this browser, or everywhere.</p>
<p class="sso-actions"><a class="sso-link" href="/">Home</a></p>`))
  })
})

app.get('/', async (request, reply) => {
  const who = request.ssoUser === null ? 'Not signed in.' : `Signed in as <strong>${esc(request.ssoUser.username)}</strong>`
  return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page(
    `<p id="who">${who}</p><p class="sso-actions"><a class="sso-button sso-button-primary" id="account" href="/account">My account</a></p>
<p class="sso-help">Sign-outs heard from the gateway: ${signOuts.length}</p>`))
})

/** The local account table, to see renames, fields and deletions arrive (demo only). */
app.get('/accounts.json', async (request, reply) => isAdmin(request)
  ? [...accounts.entries()].map(([id, a]) => ({ id, ...a }))
  : await reply.code(401).send({ error: 'admin token required' }))

// After an outage longer than the gateway's retry window: fetch every account's current state.
app.post('/admin/resync', async (request, reply) => isAdmin(request)
  ? await app.ssoService.resync()
  : await reply.code(401).send({ error: 'admin token required' }))

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port: Number(env.PORT ?? 3002), host: env.HOST ?? '127.0.0.1' })
