import fastifyCookie from '@fastify/cookie'
import fastifyCsrf from '@fastify/csrf-protection'
import fastifyFormbody from '@fastify/formbody'
import fastifyHelmet from '@fastify/helmet'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifySession from '@fastify/session'
import fastifyView from '@fastify/view'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, Session } from 'fastify'
import fp from 'fastify-plugin'
import { bodyDeadline, callbackSessionStore, generateToken, MAX_TOKEN_LENGTH, sessionIndexer } from 'fastify-sso-protocol'
import type { MessageKey } from 'fastify-sso-protocol/pages'
import type { RouteContext } from './context.js'
import { errors } from './errors.js'
import { createFacade } from './facade.js'
import { Gateway } from './gateway.js'
import { isPostgresUrl, redactUrl, resolveOptions, type FastifySsoGatewayOptions, type ResolvedGatewayOptions } from './options.js'
import { protectSecrets } from './sealed-secrets.js'
import { formCookieSent, FormTokens } from './form-tokens.js'
import { OutboxDispatcher } from './outbox/dispatcher.js'
import { compilePages, localeOf, sendMessage, translate, type Pages } from './pages.js'
import { PasswordHasher } from './passwords.js'
import { loginRoutes } from './routes/login.js'
import { logoutRoutes } from './routes/logout.js'
import { protocolRoutes } from './routes/protocol.js'
import { Limits } from './limits.js'
import { adminRoutes } from './routes/admin.js'
import { sessionRoutes } from './routes/sessions.js'
import { welcomeRoutes } from './routes/welcome.js'
import { PostgresGatewayStore } from './store/postgres.js'
import { SqliteGatewayStore } from './store/sqlite.js'
import type { GatewayStore } from './store/store.js'
import type { SsoGatewayApi } from './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The gateway's API: services, users, logout, event delivery. */
    ssoGateway: SsoGatewayApi
  }
}

/** How long audit records are kept, in ms (a year). */
const AUDIT_RETENTION = 365 * 86_400_000

const DB_UNAVAILABLE = new Set(['FST_SSO_GATEWAY_UNAVAILABLE', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_READONLY', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN'])

function isHtmlRoute (request: FastifyRequest): boolean {
  return !request.url.startsWith('/sso/')
}

/** Back to the sign-in form, keeping the sign-in in progress (`?sso=`) the failed request carried. */
function signInAgain (request: FastifyRequest): string {
  const sso = (request.query as { sso?: unknown } | undefined)?.sso
  return typeof sso === 'string' && sso.length > 0 && sso.length <= MAX_TOKEN_LENGTH && /^[\w-]+$/.test(sso)
    ? `/login/?sso=${sso}`
    : '/login/'
}

/** A not-found answer: a page for browsers, JSON for the rest (the `notFoundPage` option). */
function notFoundHandler (options: ResolvedGatewayOptions, pages: Pages) {
  return async function notFound (request: FastifyRequest, reply: FastifyReply) {
    reply.header('cache-control', 'no-store')
    if (!String(request.headers.accept ?? '').includes('text/html')) return await reply.code(404).send({ error: 'Not found' })
    const locale = localeOf(pages, request)
    const t = pages.translator(locale)
    // Rendered here (the host app's context has no @fastify/view of ours), with the pages' strict CSP.
    return await reply.code(404).type('text/html; charset=utf-8').header('content-language', locale).header('vary', 'accept-language')
      .header('content-security-policy', "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
      .header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer')
      .send(pages.render('message', locale, {
        title: options.title,
        heading: t('notFound.heading'),
        message: t('notFound.message'),
        service: null,
        forms: [],
        form: null,
        links: [{ href: '/welcome/', label: t('common.home'), button: 'primary', id: 'next-step' }]
      }))
  }
}

/** One error handler for every gateway route: JSON for the protocol, a page for browsers; never a stack trace. */
function errorHandler (options: ResolvedGatewayOptions, pages: Pages) {
  return async function handle (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    let status = error.statusCode ?? 500
    let message = error.message
    let code = error.code
    const unavailable = typeof code === 'string' && (DB_UNAVAILABLE.has(code) || code.startsWith('SQLITE_IOERR'))
    if (unavailable) {
      const answer = new errors.UNAVAILABLE()
      status = 503
      message = answer.message
      code = answer.code
      request.log.error({ err: error }, error.code === 'FST_SSO_GATEWAY_UNAVAILABLE' ? 'sso gateway unavailable (a store it needs did not answer)' : 'sso gateway database unavailable')
      reply.header('retry-after', 5)
    } else if (status >= 500) {
      request.log.error({ err: error }, 'sso gateway internal error')
      message = 'Internal error'
      code = 'FST_SSO_GATEWAY_INTERNAL'
    } else if (code === 'FST_ERR_VALIDATION') {
      message = `Invalid request: ${error.message}`
    }
    // What the page says, from the messages table: [heading, text].
    let shown: [MessageKey, MessageKey] = status === 503
      ? ['error.unavailable.heading', 'error.unavailable']
      : status >= 500 ? ['error.heading', 'error.internal'] : ['error.heading', 'error.invalidRequest']
    if (status === 429) shown = ['error.rateLimit.heading', 'error.rateLimit']
    if (status === 403 && code?.startsWith('FST_CSRF')) {
      shown = ['error.expiredForm.heading', 'error.expiredForm']
      if (request.cookies?.[options.cookieName] === undefined && !formCookieSent(request, options.cookieName)) {
        shown = ['error.noCookie.heading', 'error.noCookie']
        // The browser sent back neither the session cookie nor the form's: the form cannot be matched to it.
        request.log.warn({
          audit: 'csrf_refused',
          url: request.routeOptions.url,
          reason: 'no session cookie',
          cookieName: options.cookieName,
          cookieSecure: options.cookieSecure,
          protocol: request.protocol
        }, `sso form posted without the ${options.cookieName} cookie: the browser did not keep it. A Secure cookie is dropped on plain http: check the gateway's cookieSecure option (${String(options.cookieSecure)}) and, behind an HTTPS proxy, Fastify's trustProxy`)
        message = 'Your browser did not send back this site\'s sign-in cookie, so the form could not be checked. ' +
          'Cookies may be blocked for this site, or the page was opened over plain http while the cookie is only sent over https. ' +
          'Allow cookies (or use the https address), reload the sign-in page and try again.'
      } else {
        request.log.warn({ audit: 'csrf_refused', url: request.routeOptions.url }, 'sso form refused: bad CSRF token')
        message = 'This form has expired or did not come from this site. Go back, reload the page and try again.'
      }
    }
    if (isHtmlRoute(request)) {
      const t = translate(pages, request)
      // Every retry-after the gateway sets is a whole number of seconds.
      const seconds = Number(reply.getHeader('retry-after') ?? 60)
      return await sendMessage(reply.header('cache-control', 'no-store'), pages, options.title, status, {
        heading: t(shown[0]),
        message: t(shown[1], { seconds }),
        links: [{ href: signInAgain(request), label: t('error.backToSignIn'), button: 'primary', id: 'next-step' }]
      })
    }
    return await reply.code(status).header('cache-control', 'no-store').send({ error: message, code })
  }
}

/** The origin a theme logo comes from, for the CSP (none for a logo on the gateway itself). */
function logoOrigin (url: string | null): string[] {
  return url === null || url.startsWith('/') ? [] : [new URL(url).origin]
}

/**
 * The store at the `database` option: PostgreSQL for a postgres:// URL (reached and migrated
 * now, so a gateway that cannot reach it does not start), else the SQLite file. A database
 * that cannot be opened is an option error naming it (never its password).
 */
async function openDatabase (options: ResolvedGatewayOptions): Promise<GatewayStore> {
  if (isPostgresUrl(options.database)) {
    const store = new PostgresGatewayStore({
      connectionString: options.database, connectionTimeoutMillis: options.busyTimeout, statementTimeout: options.busyTimeout
    })
    try {
      await store.ready()
    } catch (err) {
      await store.close()
      const cause = (err as Error).cause ?? err
      const error = new errors.INVALID_OPTION('database', `cannot open the PostgreSQL database ${redactUrl(options.database)}: ${(cause as Error).message}`)
      error.cause = err
      throw error
    }
    return store
  }
  try {
    return new SqliteGatewayStore({ filename: options.database, busyTimeout: options.busyTimeout })
  } catch (err) {
    const error = new errors.INVALID_OPTION('database', `cannot open the SQLite file ${JSON.stringify(options.database)}: ${(err as Error).message} (does its folder exist and is it writable?)`)
    error.cause = err
    throw error
  }
}

/**
 * No `sessionSecret` (a first try, never production: options refuse that): one generated on
 * first start and kept in the store, so sessions survive restarts. Says so once, loudly.
 */
async function generatedSecret (store: GatewayStore, options: ResolvedGatewayOptions, log: FastifyInstance['log']): Promise<string> {
  if (store.setting === undefined) {
    throw new errors.INVALID_OPTION('sessionSecret', 'is required with a store that cannot keep settings (it has no setting() method)')
  }
  const secret = await store.setting('session_secret', () => generateToken(32))
  log.warn(`fastify-sso-gateway: no sessionSecret option, so the session cookie is signed with a secret generated on first start and kept in the database (${options.store === undefined ? redactUrl(options.database) : 'the store'}, setting "session_secret"). Fine for trying it out; for production set sessionSecret to 32+ random characters (with NODE_ENV=production the gateway refuses to start without it).`)
  return secret
}

const plugin: FastifyPluginAsync<FastifySsoGatewayOptions> = async (fastify, opts) => {
  const options = resolveOptions(opts)
  if ((fastify.server as { requestTimeout?: number }).requestTimeout === 0) {
    fastify.log.warn('fastify-sso-gateway: the server has no requestTimeout, so a client that stalls mid-request holds its socket forever; ' +
      'create it with Fastify({ ...RECOMMENDED_SERVER_OPTIONS }) (see the README, "Timeouts")')
  }
  const rawStore = options.store ?? await openDatabase(options)
  let store: GatewayStore
  try {
    store = await protectSecrets(rawStore, options.secretsKey)
  } catch (err) {
    await rawStore.close()
    throw err
  }
  const sessionSecret = options.sessionSecret ?? await generatedSecret(store, options, fastify.log)
  const index = sessionIndexer(options)
  // @fastify/session calls the store with callbacks; the store contract is async.
  const sessions = callbackSessionStore({
    get: async (sid) => await store.sessions.get(sid, Date.now()),
    set: async (sid, session: Session) => { await store.sessions.set(sid, session, index(session)) },
    destroy: async (sid) => { await store.sessions.destroy(sid) }
  })
  const outbox = new OutboxDispatcher({
    store,
    log: fastify.log,
    timeout: options.eventTimeout,
    interval: options.outboxInterval,
    retrySchedule: options.retrySchedule,
    dispatcher: options.dispatcher
  })
  const gateway = new Gateway({
    store,
    hasher: new PasswordHasher(options.passwordHash),
    outbox,
    log: fastify.log,
    accessCheck: options.accessCheck,
    minPasswordLength: options.minPasswordLength,
    tokenTtl: { pending: options.pendingTokenTtl, authenticated: options.authenticatedTokenTtl }
  })
  const pages = compilePages(options)
  const limits = new Limits(options.limits)
  const ctx: RouteContext = { options, gateway, pages, limits, outbox, formTokens: new FormTokens(options, sessionSecret) }

  fastify.decorate('ssoGateway', createFacade(gateway))

  let housekeeping: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
    outbox.start()
    const sweep = async (): Promise<void> => {
      try {
        await store.tokens.prune(Date.now())
        // Delivered events are kept an hour for inspection, then deleted: the outbox stays small.
        await store.outbox.prune(Date.now() - 3_600_000)
        // The audit log keeps a year.
        await store.audit.prune(Date.now() - AUDIT_RETENTION)
        // SSO sessions that expired unused end at every service they reached, too.
        await gateway.sweepExpiredSessions(500)
      } catch (err) {
        fastify.log.warn({ err }, 'sso gateway housekeeping failed')
      }
    }
    housekeeping = setInterval(() => { void sweep() }, options.housekeepingInterval)
    housekeeping.unref()
  })
  fastify.addHook('onClose', async () => {
    clearInterval(housekeeping)
    await outbox.close()
    await store.close()
  })

  await fastify.register(async function ssoGatewayRoutes (instance: FastifyInstance) {
    // Only form and JSON bodies: anything else (text/plain included) is a 415.
    instance.removeContentTypeParser('text/plain')
    // A body that has started must arrive within BODY_TIMEOUT, whatever the host's server options.
    instance.addHook('preParsing', bodyDeadline())
    await instance.register(fastifyFormbody, { bodyLimit: 16 * 1024 })
    // No not-found handler: unknown URLs belong to the host app (a root handler would be global).
    instance.setErrorHandler(errorHandler(options, pages))

    // Server-to-server endpoints: no cookies, sessions, CSRF or page headers on this hot path.
    await instance.register(async function ssoProtocolRoutes (api: FastifyInstance) {
      api.addHook('onSend', async (_request, reply) => {
        reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff')
      })
      await protocolRoutes(api, ctx)
    })

    // Browser pages: the gateway session, CSRF, throttling, security headers, eta views.
    await instance.register(async function ssoPageRoutes (web: FastifyInstance) {
      await web.register(fastifyCookie)
      await web.register(fastifySession, {
        secret: sessionSecret,
        cookieName: options.cookieName,
        store: sessions,
        saveUninitialized: false,
        rolling: false,
        cookie: { httpOnly: true, sameSite: 'lax', secure: options.cookieSecure, path: '/', maxAge: options.absoluteTimeout }
      })
      await web.register(fastifyCsrf, { sessionPlugin: '@fastify/session' })
      await web.register(fastifyRateLimit, { global: false, store: limits.rateLimitStore('ip') })
      await web.register(fastifyHelmet, {
        contentSecurityPolicy: {
          useDefaults: false,
          directives: {
            defaultSrc: ["'none'"],
            styleSrc: ["'self'"],
            imgSrc: ["'self'", ...logoOrigin(options.pages.theme.logoUrl)],
            baseUri: ["'none'"],
            frameAncestors: ["'none'"]
          }
        },
        referrerPolicy: { policy: 'no-referrer' },
        crossOriginEmbedderPolicy: false
      })
      await web.register(fastifyView, { engine: { eta: pages.eta }, production: true })
      await loginRoutes(web, ctx)
      await logoutRoutes(web, ctx)
      await welcomeRoutes(web, ctx)
      await sessionRoutes(web, ctx)
      if (options.admin !== null) {
        await web.register(async function ssoAdminConsole (adminApp: FastifyInstance) {
          await adminRoutes(adminApp, ctx)
        }, { prefix: options.admin.prefix })
      }
    })
  })
  if (options.notFoundPage) {
    // Asked for by the option: the host app's not-found answers become the gateway's (one per app).
    fastify.setNotFoundHandler(notFoundHandler(options, pages))
  }

}

/**
 * The fastify-sso gateway: turns a Fastify app into the central login server of an SSO
 * fleet. Register once; see the README for options.
 */
export const fastifySsoGateway = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-sso-gateway'
})

export default fastifySsoGateway
export { errors } from './errors.js'
export type { GatewayErrorCode } from './errors.js'
export type { AdminConsoleOptions, AdminRole, FastifySsoGatewayOptions, RateLimit, RedisLimitsOption } from './options.js'
export { MemoryLimitStore, RedisLimitStore, type LimitStore, type LimitWindow, type RedisClient, type RedisLimitStoreOptions } from 'fastify-sso-protocol'
export type { HashParameters } from './passwords.js'
export { OWASP_MINIMUM } from './passwords.js'
export { canonicalUsername } from './usernames.js'
export { SqliteGatewayStore, type SqliteGatewayStoreOptions } from './store/sqlite.js'
export { MemoryGatewayStore } from './store/memory.js'
export type * from './store/store.js'
export type * from './types.js'
export { AUTH_FAILURE_ATTEMPTS, PROBE_INTERVAL, RETRY_SCHEDULE } from './outbox/dispatcher.js'
export { BODY_TIMEOUT, RECOMMENDED_SERVER_OPTIONS } from 'fastify-sso-protocol'
export { PostgresGatewayStore, migratePostgres, type PostgresGatewayStoreOptions, type MigrationResult } from './store/postgres.js'
