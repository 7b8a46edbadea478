import type { FastifyReply, FastifyRequest } from 'fastify'
import { checkSessionLifetime, generateToken } from 'fastify-sso-protocol'
import type { FormTokens } from './form-tokens.js'
import type { Limits } from './limits.js'
import type { Gateway } from './gateway.js'
import type { OutboxDispatcher } from './outbox/dispatcher.js'
import type { ResolvedGatewayOptions } from './options.js'
import type { Pages } from './pages.js'
import type { UserRecord } from './types.js'

declare module 'fastify' {
  interface Session {
    /** Gateway: the signed-in user's id. Service: the signed-in username. */
    user?: string
    /** The SSO session id this browser session carries (gateway) or came from (service). */
    sso?: string
    createdAt?: number
    seenAt?: number
    endsAt?: number
    /** Gateway: when the password was last entered in this session. */
    authAt?: number
    /** Gateway: the browser's user agent and address at sign-in, for the sessions page. */
    ua?: string
    ip?: string
  }
}

/** What every route plugin of the gateway needs. */
export interface RouteContext {
  options: ResolvedGatewayOptions
  gateway: Gateway
  pages: Pages
  /**
   * Throttles and budgets (the `limits` option's store): per client address, per (account,
   * address) failures, per service sign-ins completed (`obtainRateLimit`) and raw `/sso/obtain/`
   * calls (ceiling: 10 × `obtainRateLimit.max`). Keys `ip:`, `fail:`, `signin:`, `obtain:` (README, "Several processes").
   */
  limits: Limits
  /** CSRF tokens of forms shown to browsers with no gateway session (no session row for them). */
  formTokens: FormTokens
  /** The event dispatcher: a service that calls the gateway is reachable again (its backlog goes out). */
  outbox: OutboxDispatcher
}

/**
 * The user signed in to this browser session, or null. A session past its idle or
 * absolute lifetime, or whose user is gone or disabled, is ended here; an expired one
 * also ends at every service it reached.
 */
export async function currentUser (request: FastifyRequest, ctx: RouteContext): Promise<UserRecord | null> {
  const session = request.session
  const id = session.get('user')
  if (id === undefined) return null
  const now = Date.now()
  const state = checkSessionLifetime({ createdAt: session.get('createdAt'), seenAt: session.get('seenAt') }, ctx.options, now)
  const user = await ctx.gateway.userById(id)
  if (state === 'expired' || user === null || !user.isActive) {
    const sso = session.get('sso')
    request.log.info({ audit: 'session_ended', reason: state === 'expired' ? 'expired' : 'user disabled or removed' }, 'sso gateway session ended')
    // The SSO session ends (with its events) before the browser session is dropped: a crash in
    // between leaves the end to tell, never a session gone that the services were not told of.
    if (state === 'expired' && user !== null && sso !== undefined) await ctx.gateway.endSsoSession(user, sso, 'expired')
    await session.regenerate()
    return null
  }
  if (state === 'touch') session.set('seenAt', now)
  return user
}

/** Starts a fresh gateway session and SSO session for `user` (new id: no fixation; new CSRF secret). */
export async function startSession (request: FastifyRequest, user: UserRecord): Promise<string> {
  await request.session.regenerate()
  const now = Date.now()
  const sso = 'sso_' + generateToken(18)
  const session = request.session
  session.set('user', user.id)
  session.set('sso', sso)
  session.set('createdAt', now)
  session.set('seenAt', now)
  session.set('authAt', now)
  session.set('ua', String(request.headers['user-agent'] ?? '').slice(0, 200))
  session.set('ip', request.ip)
  return sso
}

/**
 * The signed-in user entered the password again (a forced sign-in): a new session id, the
 * same SSO session (services born from it keep working), a new `authAt`.
 */
export async function confirmSession (request: FastifyRequest): Promise<void> {
  await request.session.regenerate(['user', 'sso', 'createdAt', 'ua', 'ip'])
  const now = Date.now()
  request.session.set('seenAt', now)
  request.session.set('authAt', now)
}

/** Redirects with `Cache-Control: no-store`. */
export function redirect (reply: FastifyReply, url: string, status: 302 | 303 = 302): FastifyReply {
  return reply.header('cache-control', 'no-store').redirect(url, status)
}
