import { errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import {
  accountsBodySchema, authenticationTokenBodySchema, checkNextUrl, touchBodySchema, deauthenticateBodySchema, errorResponseSchema, obtainBodySchema, PATHS
} from 'fastify-sso-protocol'
import type { RouteContext } from '../context.js'
import { errors } from '../errors.js'
import { isDjango } from '../outbox/events.js'
import { authenticateService } from '../service-auth.js'
import type { Gateway } from '../gateway.js'
import type { ServiceRecord } from '../types.js'

const BODY_LIMIT = 8 * 1024
const errorResponses = { '4xx': errorResponseSchema, '5xx': errorResponseSchema }

/** The service that called each protocol request, proven before its body is validated. */
const callers = new WeakMap<FastifyRequest, ServiceRecord>()

/**
 * Runs before schema validation. First proves the calling service (an unknown caller gets
 * the same 401 whatever it sent), then refuses extra and non-string fields: Fastify's
 * default Ajv strips unknown properties (`removeAdditional`) and coerces types, so
 * `additionalProperties: false` alone would let them through. Every protocol field is a string.
 */
function authenticateThenCheckBody (gateway: Gateway, schema: { properties: object }, seen: (serviceId: string) => void) {
  const allowed = new Set(Object.keys(schema.properties))
  return async function refuseExtraFields (request: FastifyRequest): Promise<void> {
    const service = await authenticateService(request, gateway)
    callers.set(request, service)
    seen(service.id)
    const body = request.body
    if (typeof body !== 'object' || body === null) return
    for (const [key, value] of Object.entries(body)) {
      if (!allowed.has(key)) throw new errorCodes.FST_ERR_VALIDATION('body must NOT have additional properties')
      if (typeof value !== 'string') throw new errorCodes.FST_ERR_VALIDATION(`body/${key} must be string`)
    }
  }
}

/**
 * A service calling `/sso/obtain/` more than this many times its sign-in budget per window is
 * refused outright: a runaway or a stolen secret cannot fill the token table.
 */
export const OBTAIN_CEILING = 10

/**
 * Request log serializer of the protocol routes: the path only. A query string here is never
 * the protocol's (secrets travel in the body or `X-Token`), and a confused client may put its
 * secret there: it must not reach the logs.
 */
export function protocolRequestLog (request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: request.url.split('?')[0], remoteAddress: request.ip }
}

/** The server-to-server endpoints: obtain, get, make_used, deauthenticate. */
export async function protocolRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options } = ctx
  const { limits } = ctx
  const { max, timeWindow } = options.obtainRateLimit

  /** A server-to-server route, with and without the trailing slash: the caller is proven first. */
  function serviceRoute (path: string, schema: { properties: object }, response: object,
    handler: (request: FastifyRequest, reply: FastifyReply, service: ServiceRecord) => Promise<unknown>): void {
    const preValidation = authenticateThenCheckBody(gateway, schema, (id) => { ctx.outbox.seen(id) })
    for (const url of [path, `${path}/`]) {
      fastify.post(url, { bodyLimit: BODY_LIMIT, preValidation, logSerializers: { req: protocolRequestLog }, schema: { body: schema, response: { ...response, ...errorResponses } } },
        async (request, reply) => await handler(request, reply, callers.get(request)!))
    }
  }

  serviceRoute(PATHS.obtain, obtainBodySchema, { 200: { type: 'object', properties: { token: { type: 'string' } } } }, async (request, reply, service) => {
    // Only sign-ins that complete spend the service's budget (see login.ts, complete()): anonymous
    // visits to the service's /login/ obtain tokens nobody uses, and cannot block real users.
    // A limits store that does not answer refuses the obtain (503, fail closed).
    const raw = await limits.hit(`obtain:${service.id}`, timeWindow)
    const wait = Math.max(await limits.blockedFor(`signin:${service.id}`, max),
      raw.count > OBTAIN_CEILING * max ? Math.max(raw.resetAt - Date.now(), 1) : 0)
    if (wait > 0) {
      request.log.warn({ audit: 'obtain_throttled', service: service.name }, 'sso obtain rate limit reached')
      return await reply.code(429).header('retry-after', Math.ceil(wait / 1000))
        .send({ error: 'Too many authentication requests from this service, retry later', code: 'FST_SSO_GATEWAY_RATE_LIMITED' })
    }
    const { next_url: nextUrl, prompt } = request.body as { next_url: string, prompt?: 'none' | 'login' }
    if (checkNextUrl(nextUrl) === null) throw new errors.INVALID_NEXT_URL()
    const token = await gateway.tokens.issue(service, nextUrl, prompt ?? null)
    request.log.info({ audit: 'token_issued', service: service.name }, 'sso authentication request issued')
    return { token }
  })

  serviceRoute(PATHS.get, authenticationTokenBodySchema, {}, async (request, _reply, service) => {
    const body = request.body as { authentication_token: string, code?: string }
    const token = await gateway.tokens.read(service, body.authentication_token, body.code, request.log)
    if (token === 'declined') {
      // A passive request that met no signed-in browser: answered once, then spent.
      request.log.info({ audit: 'token_declined', service: service.name }, 'sso passive request: nobody signed in')
      return { authenticated: false, reason: 'login_required' }
    }
    // An authenticated token always has its user (set in the same UPDATE), and deleting or
    // disabling the user burns it: only a change between the two reads gets a refusal here.
    /* c8 ignore next 2 */
    const user = token.userId === null ? null : await gateway.userById(token.userId)
    if (user === null || !user.isActive) throw new errors.INVALID_REQUEST_TOKEN()
    return {
      authenticated: true,
      user_identy: user.username,
      next_url: token.nextUrl,
      user: await gateway.accountOf(service, user),
      sso_session: token.ssoSession,
      sso_session_ends_at: token.sessionEndsAt,
      auth_time: token.authAt,
      issued_at: Date.now()
    }
  })

  serviceRoute(PATHS.makeUsed, authenticationTokenBodySchema, {}, async (request, _reply, service) => {
    const body = request.body as { authentication_token: string, code?: string }
    await gateway.tokens.consume(service, body.authentication_token, body.code, request.log)
    request.log.info({ audit: 'token_redeemed', service: service.name }, 'sso authentication request redeemed')
    return { ok: true }
  })

  serviceRoute(PATHS.deauthenticate, deauthenticateBodySchema, {}, async (request, _reply, service) => {
    const body = request.body as { user_identy: string, sso_session?: string }
    const user = await gateway.userByName(body.user_identy)
    if (user === null || !(await gateway.hasSignedIn(service, user))) {
      request.log.warn({ audit: 'deauthenticate_refused', service: service.name }, 'sso deauthenticate for a user unknown to the service')
      // django-sso answers 200 {"ok": true} whether or not the user exists, and a django-sso
      // service skips its own logout on any other answer: nothing to end is not an error there.
      if (isDjango(service)) return { ok: true }
      throw new errors.UNKNOWN_USER()
    }
    if (body.sso_session === undefined) {
      // django-sso's meaning: every session of the user, everywhere.
      await gateway.logoutUser(user.username)
      request.log.info({ audit: 'logout', scope: 'everywhere', service: service.name, user: user.username }, 'sso logout everywhere requested by a service')
      await ctx.gateway.audit('logout', { user: user.username, service: service.name, detail: { scope: 'everywhere' } })
      return { ok: true }
    }
    // One SSO session, if it is this user's and reached this service; repeating it is harmless.
    if (await gateway.reached(body.sso_session, service, user)) {
      await gateway.endSsoSession(user, body.sso_session, 'logout')
    }
    request.log.info({ audit: 'logout', scope: 'session', service: service.name, user: user.username }, 'sso logout of one SSO session requested by a service')
    await ctx.gateway.audit('logout', { user: user.username, service: service.name, detail: { scope: 'session' } })
    return { ok: true }
  })

  // Keep-alive: a service in use keeps the SSO session behind it from idling out at the gateway.
  serviceRoute(PATHS.touch, touchBodySchema, {}, async (request, _reply, service) => {
    if (!await gateway.touchSsoSession(service, (request.body as { sso_session: string }).sso_session, options)) {
      throw new errors.UNKNOWN_SSO_SESSION()
    }
    return { ok: true }
  })

  // Resync: the current state of every account that ever signed in to the calling service.
  serviceRoute(PATHS.accounts, accountsBodySchema, {}, async (request, _reply, service) => {
    const body = request.body as { cursor?: string, limit?: string }
    const limit = Math.min(Math.max(Number(body.limit ?? 100), 1), 500)
    const rows = await gateway.serviceUsers(service, body.cursor ?? '', limit)
    const accounts = []
    for (const row of rows) {
      accounts.push(row.user === null
        ? { user_id: row.userId, username: row.lastUsername, deleted: true }
        : await gateway.accountOf(service, row.user))
    }
    request.log.info({ audit: 'accounts_listed', service: service.name, count: accounts.length }, 'sso accounts page sent for resync')
    return { accounts, next_cursor: rows.length === limit ? rows[rows.length - 1]!.userId : null }
  })
}
