import type { FastifyReply, FastifyRequest } from 'fastify'
import { checkSessionLifetime, generateToken } from 'fastify-sso-protocol'
import type { Gateway } from './gateway.js'
import type { ResolvedGatewayOptions } from './options.js'
import type { Pages } from './pages.js'
import type { UserRecord } from './store/store.js'

declare module 'fastify' {
  interface Session {
    /** Gateway: the signed-in user's id. Service: the signed-in username. */
    user?: string
    /** The SSO session id this browser session carries (gateway) or came from (service). */
    sso?: string
    createdAt?: number
    seenAt?: number
    endsAt?: number
  }
}

/** What every route plugin of the gateway needs. */
export interface RouteContext {
  options: ResolvedGatewayOptions
  gateway: Gateway
  pages: Pages
}

/**
 * The user signed in to this browser session, or null. A session past its idle or
 * absolute lifetime, or whose user is gone or disabled, is ended here.
 */
export async function currentUser (request: FastifyRequest, ctx: RouteContext): Promise<UserRecord | null> {
  const session = request.session
  const id = session.get('user')
  if (id === undefined) return null
  const now = Date.now()
  const state = checkSessionLifetime({ createdAt: session.get('createdAt'), seenAt: session.get('seenAt') }, ctx.options, now)
  const user = state === 'expired' ? null : await ctx.gateway.store.getUserById(id)
  if (user === null || !user.isActive) {
    request.log.info({ audit: 'session_ended', reason: state === 'expired' ? 'expired' : 'user disabled or removed' }, 'sso gateway session ended')
    await session.regenerate()
    return null
  }
  if (state === 'touch') session.set('seenAt', now)
  return user
}

/** Starts a fresh gateway session for `user` (new id: no fixation; new CSRF secret). */
export async function startSession (request: FastifyRequest, user: UserRecord): Promise<string> {
  await request.session.regenerate()
  const now = Date.now()
  const sso = 'sso_' + generateToken(18)
  request.session.set('user', user.id)
  request.session.set('sso', sso)
  request.session.set('createdAt', now)
  request.session.set('seenAt', now)
  return sso
}

/** Redirects with `Cache-Control: no-store`. */
export function redirect (reply: FastifyReply, url: string, status: 302 | 303 = 302): FastifyReply {
  return reply.header('cache-control', 'no-store').redirect(url, status)
}
