/**
 * Example service A: server-rendered pages, `requireLogin` on one route, local accounts
 * kept through the `accounts` adapter (keyed by the gateway's stable user id, so a rename
 * re-keys the account instead of creating a second one).
 *
 * Environment: PORT (3001), HOST (127.0.0.1), GATEWAY_URL (browser URL of the gateway),
 * GATEWAY_INTERNAL_URL (server-to-server, defaults to GATEWAY_URL), SSO_TOKEN,
 * SSO_SIGNING_SECRET, SESSION_SECRET, DATABASE (service-a.sqlite), NODE_ENV, GATEWAY_KIND
 * (`django-sso` behind a django-sso gateway: its events are unsigned, there is no keep-alive),
 * LOGIN_RATE_LIMIT (sign-ins one client may start per minute, default 30), REDIS_URL (sessions,
 * processed events, accounts and the sign-in throttle in Redis, shared by several processes of
 * this app; REDIS_PREFIX: the key prefix), ADMIN_TOKEN (at least 32 characters: lets `GET /accounts.json` show the local accounts).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import fastifySsoService, { RECOMMENDED_SERVER_OPTIONS, type AccountsAdapter } from 'fastify-sso-service'

const env = process.env
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The app's own account table (a real app would use its database). */
interface LocalAccount { id: string, username: string, attributes: Record<string, unknown> }
const accounts = new Map<string, LocalAccount>()
const keyOf = (account: { user_id?: string, username: string }): string => account.user_id ?? account.username

const adapter: AccountsAdapter<LocalAccount> = {
  find: (ctx) => accounts.get(keyOf(ctx.account)),
  create: (ctx) => {
    const local = { id: keyOf(ctx.account), username: ctx.account.username, attributes: ctx.attributes }
    accounts.set(local.id, local)
    return local
  },
  update: (ctx) => { Object.assign(ctx.local!, { username: ctx.account.username, attributes: ctx.attributes }) },
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
}

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
  database: env.DATABASE ?? 'service-a.sqlite',
  cookieName: 'demo_service_a_session',
  ...(env.LOGIN_RATE_LIMIT === undefined ? {} : { loginRateLimit: { max: Number(env.LOGIN_RATE_LIMIT), timeWindow: 60_000 } }),
  cookieSecure: 'auto', // Secure when the request came over HTTPS (the default)
  // The plugin's pages carry this app's name; unknown URLs get the kit's not-found page.
  theme: { name: 'Service A' },
  notFoundPage: true,
  ...shared,
  accounts: adapter
})

/** The three ways out, each a POST with the CSRF token (see the README's signing-out table). */
function logoutForms (csrf: string): string {
  const form = (scope: string, id: string, label: string, kind: string): string =>
    `<form method="post" action="/logout/" class="sso-button-form"><input type="hidden" name="_csrf" value="${esc(csrf)}">` +
    `<input type="hidden" name="scope" value="${scope}"><button id="${id}" type="submit" class="sso-button sso-button-${kind}">${label}</button></form>`
  return form('app', 'leave', 'Leave this app', 'secondary') + form('session', 'logout', 'Sign out', 'primary') +
    form('everywhere', 'logout-everywhere', 'Sign out everywhere', 'danger')
}

async function page (request: FastifyRequest, reply: FastifyReply, body: string): Promise<FastifyReply> {
  const user = request.ssoUser
  const who = user === null
    ? '<p id="who">Not signed in.</p><p class="sso-actions"><a class="sso-button sso-button-primary" id="login" href="/login/?next=/private">Sign in</a>' +
      '<a class="sso-link" id="login-passive" href="/login/?prompt=none&amp;next=/">Am I signed in elsewhere?</a></p>'
    : `<p id="who">Signed in as <strong>${esc(user.username)}</strong></p>${logoutForms(await reply.generateCsrf())}`
  // The plugin's page kit: its stylesheet (served at /sso/style.css), header and card.
  return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Service A</title><link rel="stylesheet" href="/sso/style.css"></head>
<body class="sso"><header class="sso-header"><span class="sso-name">Service A</span></header>
<main class="sso-card"><h1>Service A</h1>${who}${body}<p class="sso-actions"><a class="sso-link" href="/">Home</a><a class="sso-link" href="/private">Private page</a>` +
    `<a class="sso-link" id="reauth" href="/login/?prompt=login&amp;next=/private">Confirm my password</a></p></main></body></html>`)
}

app.get('/', async (request, reply) => await page(request, reply, '<p>A public page of service A.</p>'))

app.get('/private', { preHandler: app.requireLogin }, async (request, reply) => {
  const local = accounts.get(request.ssoUser?.userId ?? request.ssoUser?.username ?? '')
  return await page(request, reply, `<p id="private">Private page of service A. Local account: ${esc(local?.attributes.email ?? 'none')}.</p>`)
})

/** The local account table, to see renames, fields and deletions arrive (demo only; admin token required). */
app.get('/accounts.json', async (request, reply) => isAdmin(request)
  ? [...accounts.values()]
  : await reply.code(401).send({ error: 'admin token required' }))

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}

await app.listen({ port: Number(env.PORT ?? 3001), host: env.HOST ?? '127.0.0.1' })
