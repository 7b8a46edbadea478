/// <reference types="@fastify/csrf-protection" preserve="true" />
/// <reference types="@fastify/session" preserve="true" />
import fastifyCookie from '@fastify/cookie'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import fastifyFormbody from '@fastify/formbody'
import fastifySession from '@fastify/session'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, Session } from 'fastify'
import fp from 'fastify-plugin'
import { bodyDeadline, callbackSessionStore, sessionIndexer, USERNAME_LOG_SERIALIZERS } from 'fastify-sso-protocol'
import { InvalidOptionError, SessionConflictError } from './errors.js'
import { GatewayClient } from './gateway-client.js'
import fastifyView from '@fastify/view'
import { compilePages, htmlErrorHandler, localeOf, securityHeaders, STYLESHEET, type Pages } from './html.js'
import { databaseFailureHook, GuardedSessionStore } from './session-guard.js'
import { AccountSync } from './account-sync.js'
import { buildPipeline, resolveOptions } from './options.js'
import { requireFreshLogin, requireLogin } from './require-login.js'
import { acceptRoutes } from './routes/accept.js'
import { eventRoutes } from './routes/event.js'
import { loginRoutes } from './routes/login.js'
import { logoutRoutes } from './routes/logout.js'
import { testPageRoutes } from './routes/test-page.js'
import { ServiceDatabase, sessionLifetimeHook, type ServiceState } from './session.js'
import { RedisServiceStore } from './redis-store.js'
import type { RouteContext } from './context.js'
import type { FastifySsoServiceOptions, SsoServiceApi } from './types.js'

/** A not-found answer: a page for browsers, JSON for the rest (the `notFoundPage` option). */
function notFoundHandler (pages: Pages, headers: Record<string, string>) {
  return async function ssoServiceNotFound (request: FastifyRequest, reply: FastifyReply) {
    if (!String(request.headers.accept ?? '').includes('text/html')) return await reply.code(404).header('cache-control', 'no-store').send({ error: 'Not found' })
    const locale = localeOf(pages, request)
    const t = pages.translator(locale)
    return await reply.code(404).headers(headers).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store')
      .header('content-language', locale).header('vary', 'accept-language')
      .send(pages.render('message', locale, {
        heading: t('notFound.heading'),
        paragraphs: [{ text: t('notFound.message') }],
        links: [{ href: '/', label: t('common.home'), button: 'primary', id: 'home' }]
      }))
  }
}

/** How often expired sessions and old event ids are deleted, in ms. */
const PRUNE_INTERVAL = 10 * 60_000

async function browserRoutes (fastify: FastifyInstance, context: RouteContext): Promise<void> {
  const { pages } = context
  const headers = securityHeaders(context.options)
  fastify.setErrorHandler(htmlErrorHandler(pages))
  fastify.addHook('preParsing', bodyDeadline())
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store').headers(headers)
  })
  await fastify.register(fastifyView, { engine: { eta: pages.eta }, production: true })
  fastify.get(STYLESHEET, async (_request, reply) =>
    await reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(pages.css))
  await fastify.register(loginRoutes, context)
  await fastify.register(acceptRoutes, context)
  await fastify.register(logoutRoutes, context)
  await fastify.register(testPageRoutes, context)
}

const plugin: FastifyPluginAsync<FastifySsoServiceOptions> = async (fastify, opts) => {
  const options = resolveOptions(opts)
  const steps = buildPipeline(options)
  if (fastify.hasPlugin('@fastify/session') || fastify.hasRequestDecorator('session')) throw new SessionConflictError('@fastify/session')
  if (fastify.hasDecorator('csrfProtection')) throw new SessionConflictError('@fastify/csrf-protection')

  const lifetime = { idleTimeout: options.idleTimeout, absoluteTimeout: options.absoluteTimeout }
  const index = sessionIndexer(lifetime)
  let db: ServiceState
  if (options.store !== undefined) {
    db = new RedisServiceStore(options.store)
  } else {
    try {
      db = new ServiceDatabase(options.database)
    } catch (err) {
      throw new InvalidOptionError('database', `cannot open ${JSON.stringify(options.database)}: ${(err as Error).message}`)
    }
  }
  const prune = async (): Promise<void> => {
    try {
      await db.prune()
    /* c8 ignore start: only a broken database file fails here */
    } catch (err) {
      fastify.log.error({ err }, 'fastify-sso-service: pruning failed')
    }
    /* c8 ignore stop */
  }
  await prune()
  const pruner = setInterval(() => { void prune() }, PRUNE_INTERVAL)
  pruner.unref()
  fastify.addHook('onClose', async () => {
    clearInterval(pruner)
    db.close()
  })

  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  if (!fastify.hasContentTypeParser('application/x-www-form-urlencoded')) await fastify.register(fastifyFormbody)
  if ((fastify.server as { requestTimeout?: number }).requestTimeout === 0) {
    fastify.log.warn('fastify-sso-service: the server has no requestTimeout, so a client that stalls mid-request holds its socket forever; ' +
      'create it with Fastify({ ...RECOMMENDED_SERVER_OPTIONS }) (see the README, "Timeouts")')
  }
  const sessions = new GuardedSessionStore({
    get: async (sid) => await db.store.get(sid, Date.now()),
    set: async (sid, session: Session) => { await db.store.set(sid, session, index(session)) },
    destroy: async (sid) => { await db.store.destroy(sid) }
  }, (err, what) => {
    fastify.log.error({ err }, `fastify-sso-service: ${what} failed (database unavailable)`)
  })
  await fastify.register(fastifySession, {
    secret: options.sessionSecret,
    cookieName: options.cookieName,
    store: callbackSessionStore(sessions),
    saveUninitialized: false,
    rolling: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: options.cookieSecure, path: '/' }
  })
  await fastify.register(fastifyCsrfProtection, { sessionPlugin: '@fastify/session' })
  const pages = compilePages(options)
  fastify.addHook('onSend', databaseFailureHook(sessions, pages, securityHeaders(options)))

  const client = new GatewayClient(options)
  const sync = new AccountSync(options, db, client, steps, fastify.log.child({}, { serializers: USERNAME_LOG_SERIALIZERS }))
  const api: SsoServiceApi = {
    async logoutUser (username: string): Promise<number> {
      const ended = await db.store.destroyByUser(username)
      fastify.log.info({ audit: 'logout_user', user: username, sessionsEnded: ended }, 'sessions ended by the application')
      return ended
    },
    async resync (resyncOptions) {
      return await sync.resync(resyncOptions)
    }
  }
  fastify.decorateRequest('ssoUser', null)
  fastify.decorateRequest('ssoPassiveChecked', false)
  fastify.decorate('requireLogin', requireLogin)
  fastify.decorate('requireFreshLogin', requireFreshLogin)
  fastify.decorate('ssoService', api)
  // Keep-alive: a user active here keeps the SSO session alive at the gateway, in the background;
  // an SSO session the gateway says has ended (revoked, expired) ends here at once.
  const keepAlive = options.keepAliveInterval === 0
    ? undefined
    : {
        interval: options.keepAliveInterval,
        send: (ssoSession: string, request: FastifyRequest): void => {
          client.touch(ssoSession).catch(async (err: FastifyError) => {
            if (err.code !== 'FST_SSO_SERVICE_GATEWAY_REFUSED') {
              request.log.debug({ code: err.code }, 'keep-alive: the gateway could not be reached')
              return
            }
            const ended = await db.store.destroyBySsoSession(ssoSession)
            request.log.info({ audit: 'session_ended', reason: 'sso session ended at the gateway', sessionsEnded: ended }, 'SSO session ended at the gateway')
          }).catch((err: unknown) => {
            // In the background, after the response: a store that cannot delete now must not crash the process.
            request.log.error({ err }, 'keep-alive: the ended SSO session could not be deleted here (store unavailable); its session will end at its expiry or the next deauthenticate')
          })
        }
      }
  fastify.addHook('onRequest', sessionLifetimeHook(lifetime, Date.now, keepAlive))

  const context: RouteContext = { options, db, client, sync, pages }
  // Usernames come from the gateway: logged with line separators escaped.
  await fastify.register(browserRoutes, { ...context, logSerializers: USERNAME_LOG_SERIALIZERS } as RouteContext)
  await fastify.register(eventRoutes, { ...context, logSerializers: USERNAME_LOG_SERIALIZERS } as RouteContext)
  // Asked for by the option: the host app's not-found answers become the plugin's (one per app).
  if (options.notFoundPage) fastify.setNotFoundHandler(notFoundHandler(pages, securityHeaders(options)))
}

/** The service plugin: sign this app's users in through a fastify-sso (or django-sso) gateway. */
export const fastifySsoService = fp(plugin, { fastify: '5.x', name: 'fastify-sso-service' })
export default fastifySsoService

export * from './errors.js'
export { DEFAULT_STEP_NAMES, insertAfter, insertBefore, removeStep, replaceStep } from './pipeline.js'
export type {
  AccountRemoveContext,
  AccountRenameContext,
  AccountsAdapter,
  PipelineContext,
  PipelineSource,
  PipelineStep
} from './pipeline.js'
export type { LogoutScope } from './routes/logout.js'
export type {
  AccountHookContext,
  DeauthenticateHookContext,
  FastifySsoServiceOptions,
  RequireFreshLogin,
  RequireLoginHook,
  ResyncOptions,
  ResyncSummary,
  SsoServiceApi,
  SsoUser
} from './types.js'
export type { SsoAccount } from 'fastify-sso-protocol'
export { BODY_TIMEOUT, RECOMMENDED_SERVER_OPTIONS } from 'fastify-sso-protocol'
export { SqliteSessionStore, type ServiceSessionStore, type SqliteSessionStoreOptions } from './session-store.js'
export { RedisServiceStore, type RedisServiceStoreOptions } from './redis-store.js'
export type { RedisStoreOption } from './types.js'
export { MemoryLimitStore, RedisLimitStore, type LimitStore, type LimitWindow, type RedisClient, type RedisLimitStoreOptions } from 'fastify-sso-protocol'
