import { checkNextUrl } from 'fastify-sso-protocol'
import { FreshLoginRequiredError, InvalidOptionError, UnauthenticatedError } from './errors.js'
import { loginHref } from './html.js'
import type { RequireFreshLogin, RequireLoginHook } from './types.js'

function wantsHtml (accept: string | undefined): boolean {
  return accept !== undefined && accept.toLowerCase().includes('text/html')
}

/**
 * The `fastify.requireLogin` preHandler: signed-in requests pass; a browser
 * (Accept includes text/html) is sent to the login with `next` set to the
 * current path; any other client gets a 401 JSON error.
 */
export const requireLogin: RequireLoginHook = async function requireLogin (request, reply) {
  if (request.ssoUser !== null) return
  reply.header('cache-control', 'no-store')
  if (wantsHtml(request.headers.accept)) {
    const next = checkNextUrl(request.url) ?? '/'
    return reply.redirect(loginHref(next))
  }
  const err = new UnauthenticatedError()
  return reply.code(err.statusCode).send({ error: err.message, code: err.code })
}

/**
 * `fastify.requireFreshLogin(maxAgeMs)`: a preHandler that lets through only users
 * who entered their password at the gateway at most `maxAgeMs` ago. Others (and
 * users whose gateway does not say when, `authTime: null`) are sent to
 * `/login/?prompt=login&next=<current path>` (browser) or get a 401 JSON error.
 */
export const requireFreshLogin: RequireFreshLogin = function requireFreshLogin (maxAgeMs) {
  if (typeof maxAgeMs !== 'number' || !Number.isSafeInteger(maxAgeMs) || maxAgeMs <= 0) {
    throw new InvalidOptionError('requireFreshLogin(maxAgeMs)', `expected a positive integer (milliseconds), got ${String(maxAgeMs)}`)
  }
  return async function requireFreshLoginHook (request, reply) {
    const authTime = request.ssoUser?.authTime ?? null
    if (authTime !== null && Date.now() - authTime <= maxAgeMs) return
    reply.header('cache-control', 'no-store')
    if (wantsHtml(request.headers.accept)) {
      const next = checkNextUrl(request.url) ?? '/'
      return reply.redirect(loginHref(next, 'login'))
    }
    const err = new FreshLoginRequiredError()
    return reply.code(err.statusCode).send({ error: err.message, code: err.code })
  }
}
