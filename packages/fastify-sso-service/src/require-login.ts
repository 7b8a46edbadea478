import { checkNextUrl } from 'fastify-sso-protocol'
import { UnauthenticatedError } from './errors.js'
import { loginHref } from './html.js'
import type { RequireLoginHook } from './types.js'

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
