import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { logText, MAX_TOKEN_LENGTH, PATHS } from 'fastify-sso-protocol'
import { confirmSession, currentUser, redirect, startSession, type RouteContext } from '../context.js'
import { sendMessage, sendPage, serviceView, translate } from '../pages.js'
import { isDjango } from '../outbox/events.js'
import { MAX_PASSWORD_LENGTH } from '../passwords.js'
import type { RequestTokenRecord, ServiceRecord, UserRecord } from '../types.js'
import type { Translate } from 'fastify-sso-protocol/pages'

const querySchema = {
  type: 'object',
  properties: { sso: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } }
} as const

const loginBodySchema = {
  type: 'object',
  required: ['username', 'password'],
  properties: {
    username: { type: 'string', maxLength: 600 },
    password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH },
    _csrf: { type: 'string', maxLength: 512 }
  }
} as const

/**
 * Request log serializer for the sign-in routes: the request token in `?sso=` is a
 * bearer credential until it is used, so it never reaches the logs.
 */
export function redactedRequest (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url.replace(/([?&]sso=)[^&#]*/g, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip
  }
}
const logSerializers = { req: redactedRequest }

/** Failed passwords allowed per (account, client address) within `LOCKOUT_WINDOW`. */
export const LOCKOUT_FAILURES = 10
/** How long a (account, client address) pair stays locked after `LOCKOUT_FAILURES` failures, in ms. */
export const LOCKOUT_WINDOW = 15 * 60_000

/** The sign-in form (GET and POST `/login/`), and silent SSO for signed-in browsers. */
export async function loginRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options, pages, limits } = ctx
  const { formTokens } = ctx
  const checkForm = formTokens.preHandler(fastify)

  interface Pending { token: RequestTokenRecord, service: ServiceRecord, raw: string }

  /** The live pending request `?sso=` names, or null (after sending an explanation). */
  async function pendingRequest (request: FastifyRequest, reply: FastifyReply): Promise<Pending | null | undefined> {
    const raw = (request.query as { sso?: string }).sso
    if (raw === undefined) return undefined
    const { token, service } = await gateway.tokens.pending(raw)
    if (token === null || service === null) {
      const t = translate(pages, request)
      const view = service === null ? null : serviceView(service)
      await sendMessage(reply, pages, options.title, 400, {
        heading: t('link.invalid.heading'),
        message: t('link.invalid.expired'),
        service: view,
        links: view !== null && service !== null
          ? [{ href: `${service.baseUrl}/login/`, label: t('link.invalid.again', { service: view.displayName }), button: 'primary', id: 'next-step' }]
          : [{ href: '/welcome/', label: t('link.invalid.account'), button: 'primary', id: 'next-step' }]
      })
      return null
    }
    return { token, service, raw }
  }

  /** Authenticates the pending request for `user` and sends the browser back to the service. */
  async function complete (request: FastifyRequest, reply: FastifyReply, pending: Pending, user: UserRecord, status: 302 | 303): Promise<FastifyReply> {
    // Access is checked before the request is authenticated: a refused user's service hears nothing.
    const groups = await gateway.groupsOf(user)
    if (!await gateway.mayUse(pending.service, user, groups)) {
      request.log.warn({ audit: 'access_denied', service: pending.service.name, user: user.username }, 'sso access to a service refused')
      await gateway.audit('access_denied', { user: user.username, service: pending.service.name })
      if (pending.token.prompt === 'none') {
        // Passive means never a page to act on: the service hears that nobody it may let in is signed in.
        await gateway.tokens.decline(pending.token)
        return redirect(reply, `${pending.service.baseUrl}/sso/accept/`)
      }
      const t = translate(pages, request)
      const view = serviceView(pending.service)
      return await sendMessage(reply.header('cache-control', 'no-store'), pages, options.title, 403, {
        heading: t('access.denied.heading', { service: view.displayName }),
        message: t('access.denied.message', { user: user.username, service: view.displayName }),
        service: view,
        form: { action: '/logout/', csrfToken: await reply.generateCsrf(), label: t('access.denied.switch'), fields: { scope: 'session' }, variant: 'secondary', id: 'logout' },
        links: [{ href: `${pending.service.baseUrl}/`, label: t('access.denied.back', { service: view.displayName }), button: 'primary', id: 'next-step' }]
      })
    }
    // A django-sso service finds the user only through update_account: it must have taken the
    // event before the browser goes back to it. If it has not, say so and offer a retry; the
    // request token stays pending, so the retry link works (silently: the user is signed in here).
    if (isDjango(pending.service) && !await gateway.pushAccountTo(pending.service, user, options.inlineEventTimeout)) {
      request.log.warn({ audit: 'event_inline_failed', service: pending.service.name, user: user.username },
        'sso update_account not accepted at sign-in (the django-sso service is unreachable or refused it: see its event_failed record); sign-in not completed')
      const t = translate(pages, request)
      const view = serviceView(pending.service)
      return await sendMessage(reply.header('cache-control', 'no-store').header('retry-after', 5), pages, options.title, 503, {
        heading: t('service.unreachable.heading', { service: view.displayName }),
        message: t('service.unreachable.message', { service: view.displayName }),
        service: view,
        links: [{ href: `/login/?sso=${encodeURIComponent(pending.raw)}`, label: t('common.tryAgain'), button: 'primary', id: 'next-step' }]
      })
    }
    const session = request.session
    // A fastify-sso service builds the account from /sso/get/ (which carries the same fields), so
    // its update_account is queued with the authentication and delivered in the background.
    const authenticated = await gateway.tokens.authenticate(pending.token, pending.service, {
      userId: user.id,
      ssoSession: session.get('sso') as string,
      sessionEndsAt: (session.get('createdAt') as number) + options.absoluteTimeout,
      authAt: session.get('authAt') ?? (session.get('createdAt') as number)
    }, gateway.signInEvents(pending.service, user, groups))
    if (authenticated === false) {
      const t = translate(pages, request)
      const view = serviceView(pending.service)
      return await sendMessage(reply, pages, options.title, 400, {
        heading: t('link.invalid.heading'),
        message: t('link.invalid.used'),
        service: view,
        links: [{ href: `${pending.service.baseUrl}/login/`, label: t('link.invalid.again', { service: view.displayName }), button: 'primary', id: 'next-step' }]
      })
    }
    try {
      await limits.hit(`signin:${pending.service.id}`, options.obtainRateLimit.timeWindow)
    } catch (err) {
      // The sign-in is done (the gate is /sso/obtain/, which fails closed): it just goes uncounted.
      request.log.warn({ err }, 'sso sign-in not counted in the service budget: the limits store did not answer')
    }
    request.log.info({ audit: 'token_authenticated', service: pending.service.name, user: user.username }, 'sso authentication request authenticated')
    await gateway.audit('service_sign_in', { user: user.username, service: pending.service.name })
    // Only the registered base URL decides where the browser goes: never Host or forwarding headers.
    const code = authenticated.code
    return redirect(reply, `${pending.service.baseUrl}/sso/accept/${code === null ? '' : `?code=${code}`}`, status)
  }

  /** The sign-in form; `error`: a message key and its parameters, shown against the fields. */
  async function showForm (request: FastifyRequest, reply: FastifyReply, pending: Pending | undefined, status: number,
    error: Parameters<Translate> | null, username: string): Promise<FastifyReply> {
    const t = translate(pages, request)
    const action = pending === undefined ? '/login/' : `/login/?sso=${encodeURIComponent(pending.raw)}`
    const service = pending === undefined ? null : serviceView(pending.service)
    return await sendPage(reply.header('cache-control', 'no-store'), pages, 'login', status, {
      title: options.title,
      heading: t('login.heading'),
      action,
      csrfToken: request.session.get('user') === undefined ? formTokens.issue(request, reply, options.pendingTokenTtl) : await reply.generateCsrf(),
      service,
      serviceName: service?.displayName ?? null,
      error: error === null ? null : t(...error),
      username
    })
  }

  for (const url of [PATHS.login, `${PATHS.login}/`]) {
    fastify.get(url, { schema: { querystring: querySchema }, logSerializers }, async (request, reply) => {
      const pending = await pendingRequest(request, reply)
      if (pending === null) return reply
      const user = await currentUser(request, ctx)
      const mustAsk = pending !== undefined && (pending.token.prompt === 'login' || pending.service.freshLogin)
      if (user !== null && !mustAsk) {
        if (pending === undefined) return redirect(reply, '/welcome/')
        return await complete(request, reply, pending, user, 302)
      }
      if (pending?.token.prompt === 'none') {
        // Passive sign-in: never a form (not even for a service that requires a fresh password).
        // The service learns from /sso/get/ that nobody is signed in.
        await gateway.tokens.decline(pending.token)
        return redirect(reply, `${pending.service.baseUrl}/sso/accept/`)
      }
      return await showForm(request, reply, pending, 200, null, user?.username ?? '')
    })

    fastify.post(url, {
      schema: { querystring: querySchema, body: loginBodySchema },
      logSerializers,
      bodyLimit: 16 * 1024,
      preHandler: checkForm,
      config: { rateLimit: { max: options.loginRateLimit.max, timeWindow: options.loginRateLimit.timeWindow } }
    }, async (request, reply) => {
      const pending = await pendingRequest(request, reply)
      if (pending === null) return reply
      const { username, password } = request.body as { username: string, password: string }
      const name = username.normalize('NFKC').toLowerCase()
      // Per (account, client address): failures from one address never lock the owner out
      // elsewhere (the lockout cannot be aimed at a victim); each address gets its own 10 tries.
      // Once a pair has failed, each further attempt takes its slot before the password is
      // checked (one atomic step of the shared store): parallel guesses through any number of
      // processes get at most LOCKOUT_FAILURES checks. Successes never count: a pair with no
      // failure is checked unreserved (a burst there is bounded by the per-address throttle).
      const failureKey = `fail:${name}\u0000${request.ip}`
      const known = await limits.peek(failureKey)
      let blocked = known !== null && known.count >= LOCKOUT_FAILURES ? known.resetAt - Date.now() : 0
      let reserved = false
      if (known !== null && blocked <= 0) {
        const attempt = await limits.hit(failureKey, LOCKOUT_WINDOW)
        reserved = true
        if (attempt.count > LOCKOUT_FAILURES) blocked = Math.max(attempt.resetAt - Date.now(), 1)
      }
      if (blocked > 0) {
        request.log.warn({ audit: 'login_throttled', user: logText(name.slice(0, 150)) }, 'sso sign-in throttled for this account and client')
        reply.header('retry-after', Math.max(Math.ceil(blocked / 1000), 1))
        return await showForm(request, reply, pending, 429, ['login.lockedOut', { minutes: Math.max(Math.ceil(blocked / 60_000), 1) }], username)
      }
      const user = await gateway.userByName(username)
      const { ok, rehash } = await ctx.gateway.verifyPassword(user, password)
      if (!ok || user === null || !user.isActive) {
        if (!reserved) await limits.hit(failureKey, LOCKOUT_WINDOW)
        request.log.warn({ audit: 'login_failed', user: logText(name.slice(0, 150)) }, 'sso sign-in failed')
        // Only a failure for an existing account is kept: any other name is the attacker's text, not a user's record.
        if (user !== null) await gateway.audit('login_failed', { user: user.username, detail: { ip: request.ip } })
        return await showForm(request, reply, pending, 401, ['login.wrongPassword'], username)
      }
      if (known !== null) await limits.reset(failureKey)
      formTokens.clear(request, reply)
      if (rehash) await ctx.gateway.rehashPassword(user, password)
      const current = await currentUser(request, ctx)
      if (current !== null && current.id === user.id) {
        await confirmSession(request)
      } else {
        // Someone else was signed in in this browser: their SSO session ends first.
        if (current !== null) await gateway.endSsoSession(current, request.session.get('sso') as string, 'logout')
        await startSession(request, user)
      }
      request.log.info({ audit: 'login', user: user.username, service: pending?.service.name ?? null }, 'sso sign-in')
      await gateway.audit('login', { user: user.username, service: pending?.service.name ?? null, detail: { ip: request.ip } })
      if (pending === undefined) return redirect(reply, '/welcome/', 303)
      return await complete(request, reply, pending, user, 303)
    })
  }
}
