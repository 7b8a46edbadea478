import { errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import {
  accountsBodySchema, authenticationTokenBodySchema, checkNextUrl, touchBodySchema, deauthenticateBodySchema, errorResponseSchema, generateToken, hashToken,
  obtainBodySchema, PATHS, safeEqual
} from 'fastify-sso-protocol'
import type { RouteContext } from '../context.js'
import { errors } from '../errors.js'
import { accountFor, isDjango } from '../outbox/events.js'
import { authenticateService } from '../service-auth.js'
import type { Gateway } from '../gateway.js'
import type { RequestTokenRecord, ServiceRecord } from '../store/store.js'

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
function authenticateThenCheckBody (gateway: Gateway, schema: { properties: object }) {
  const allowed = new Set(Object.keys(schema.properties))
  return async function refuseExtraFields (request: FastifyRequest): Promise<void> {
    callers.set(request, await authenticateService(request, gateway))
    const body = request.body
    if (typeof body !== 'object' || body === null) return
    for (const [key, value] of Object.entries(body)) {
      if (!allowed.has(key)) throw new errorCodes.FST_ERR_VALIDATION('body must NOT have additional properties')
      if (typeof value !== 'string') throw new errorCodes.FST_ERR_VALIDATION(`body/${key} must be string`)
    }
  }
}

/** Counts `/sso/obtain/` calls per service in fixed windows. Per process: see README. */
export class WindowCounter {
  readonly #hits = new Map<string, { start: number, count: number }>()
  constructor (readonly max: number, readonly window: number) {}
  /** Ms to wait before the next allowed call, or 0 when this one is allowed. */
  take (key: string, now: number): number {
    let slot = this.#hits.get(key)
    if (slot === undefined || now - slot.start >= this.window) {
      if (this.#hits.size > 10_000) this.#hits.clear()
      slot = { start: now, count: 0 }
      this.#hits.set(key, slot)
    }
    slot.count++
    return slot.count > this.max ? slot.start + this.window - now : 0
  }
}

/** The server-to-server endpoints: obtain, get, make_used, deauthenticate. */
export async function protocolRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options } = ctx
  const store = gateway.store
  const obtainBudget = new WindowCounter(options.obtainRateLimit.max, options.obtainRateLimit.timeWindow)

  /** A server-to-server route, with and without the trailing slash: the caller is proven first. */
  function serviceRoute (path: string, schema: { properties: object }, response: object,
    handler: (request: FastifyRequest, reply: FastifyReply, service: ServiceRecord) => Promise<unknown>): void {
    const preValidation = authenticateThenCheckBody(gateway, schema)
    for (const url of [path, `${path}/`]) {
      fastify.post(url, { bodyLimit: BODY_LIMIT, preValidation, schema: { body: schema, response: { ...response, ...errorResponses } } },
        async (request, reply) => await handler(request, reply, callers.get(request)!))
    }
  }

  serviceRoute(PATHS.obtain, obtainBodySchema, { 200: { type: 'object', properties: { token: { type: 'string' } } } }, async (request, reply, service) => {
    const now = Date.now()
    const wait = obtainBudget.take(service.id, now)
    if (wait > 0) {
      request.log.warn({ audit: 'obtain_throttled', service: service.name }, 'sso obtain rate limit reached')
      return await reply.code(429).header('retry-after', Math.ceil(wait / 1000))
        .send({ error: 'Too many authentication requests from this service, retry later', code: 'FST_SSO_GATEWAY_RATE_LIMITED' })
    }
    const { next_url: nextUrl, prompt } = request.body as { next_url: string, prompt?: 'none' | 'login' }
    if (checkNextUrl(nextUrl) === null) throw new errors.INVALID_NEXT_URL()
    const token = generateToken()
    await store.createRequestToken({
      hash: hashToken(token), serviceId: service.id, nextUrl, prompt: prompt ?? null, expiresAt: now + options.pendingTokenTtl, createdAt: now
    })
    request.log.info({ audit: 'token_issued', service: service.name }, 'sso authentication request issued')
    return { token }
  })

  /**
   * An authenticated request of a fastify-sso service is only good with the code its browser
   * brought back: without it (or with another), the token is burnt. See login.ts, complete().
   */
  async function requireCode (request: FastifyRequest, service: ServiceRecord, token: RequestTokenRecord): Promise<void> {
    if (token.codeHash === null) return
    const code = (request.body as { code?: string }).code
    if (code !== undefined && safeEqual(hashToken(code), token.codeHash)) return
    await store.burnRequestToken(token.hash)
    request.log.warn({ audit: 'token_code_mismatch', service: service.name }, 'sso token presented without its browser code: burnt')
    throw new errors.INVALID_REQUEST_TOKEN()
  }

  serviceRoute(PATHS.get, authenticationTokenBodySchema, {}, async (request, _reply, service) => {
    const hash = hashToken((request.body as { authentication_token: string }).authentication_token)
    const token = await store.getRequestToken(hash, Date.now())
    if (token === null || token.status === 'used') throw new errors.INVALID_REQUEST_TOKEN()
    if (token.serviceId !== service.id) {
      await store.burnRequestToken(hash)
      request.log.warn({ audit: 'token_wrong_service', service: service.name }, 'sso token presented by another service: burnt')
      throw new errors.INVALID_REQUEST_TOKEN()
    }
    if (token.status === 'pending') throw new errors.PENDING()
    if (token.status === 'declined') {
      // A passive request that met no signed-in browser: answered once, then spent.
      if (!await store.spendDeclinedToken(hash, service.id, Date.now())) throw new errors.INVALID_REQUEST_TOKEN()
      request.log.info({ audit: 'token_declined', service: service.name }, 'sso passive request: nobody signed in')
      return { authenticated: false, reason: 'login_required' }
    }
    await requireCode(request, service, token)
    /* c8 ignore next: an authenticated token always has its user (set in the same UPDATE) */
    const user = token.userId === null ? null : await store.getUserById(token.userId)
    if (user === null || !user.isActive) throw new errors.INVALID_REQUEST_TOKEN()
    return {
      authenticated: true,
      user_identy: user.username,
      next_url: token.nextUrl,
      user: accountFor(service, user, await store.groupsOfUser(user.id)),
      sso_session: token.ssoSession,
      sso_session_ends_at: token.sessionEndsAt,
      auth_time: token.authAt
    }
  })

  serviceRoute(PATHS.makeUsed, authenticationTokenBodySchema, {}, async (request, _reply, service) => {
    const hash = hashToken((request.body as { authentication_token: string }).authentication_token)
    const now = Date.now()
    // One atomic check-and-set, the browser code included; the reason is looked up only on failure.
    const code = (request.body as { code?: string }).code
    const used = await store.consumeRequestToken(hash, service.id, now, code === undefined ? null : hashToken(code))
    if (used === null) {
      const token = await store.getRequestToken(hash, now)
      if (token !== null && token.serviceId === service.id && token.status === 'authenticated') await requireCode(request, service, token)
      if (token !== null && token.serviceId !== service.id) {
        await store.burnRequestToken(hash)
        request.log.warn({ audit: 'token_wrong_service', service: service.name }, 'sso token presented by another service: burnt')
      } else if (token !== null && token.status === 'pending') {
        throw new errors.PENDING()
      } else {
        request.log.warn({ audit: 'token_replayed', service: service.name }, 'sso token replay refused')
      }
      throw new errors.INVALID_REQUEST_TOKEN()
    }
    request.log.info({ audit: 'token_redeemed', service: service.name }, 'sso authentication request redeemed')
    return { ok: true }
  })

  serviceRoute(PATHS.deauthenticate, deauthenticateBodySchema, {}, async (request, _reply, service) => {
    const body = request.body as { user_identy: string, sso_session?: string }
    const user = await gateway.userByName(body.user_identy)
    if (user === null || !(await store.hasSignedIn(service.id, user.id))) {
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
      return { ok: true }
    }
    // One SSO session, if it is this user's and reached this service; repeating it is harmless.
    const reached = await store.ssoSessionServices(body.sso_session)
    if (reached.some((r) => r.serviceId === service.id && r.userId === user.id)) {
      await gateway.endSsoSession(user, body.sso_session, 'logout')
    }
    request.log.info({ audit: 'logout', scope: 'session', service: service.name, user: user.username }, 'sso logout of one SSO session requested by a service')
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
    const rows = await store.serviceUsers(service.id, body.cursor ?? '', limit)
    const accounts = []
    for (const row of rows) {
      accounts.push(row.user === null
        ? { user_id: row.userId, username: row.lastUsername, deleted: true }
        : accountFor(service, row.user, await store.groupsOfUser(row.user.id)))
    }
    request.log.info({ audit: 'accounts_listed', service: service.name, count: accounts.length }, 'sso accounts page sent for resync')
    return { accounts, next_cursor: rows.length === limit ? rows[rows.length - 1]!.userId : null }
  })
}
