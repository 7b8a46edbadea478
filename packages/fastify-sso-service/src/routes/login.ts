import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { checkNextUrl, MAX_NEXT_URL_LENGTH, PATHS } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { loginHref, sendErrorPage } from '../html.js'
import { sessionOf } from '../session.js'

const querystring = {
  type: 'object',
  properties: { next: { type: 'string', maxLength: MAX_NEXT_URL_LENGTH * 3 } }
} as const

/** `GET /login/?next=/x`: obtains a request token and sends the browser to the gateway. */
export const loginRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client }) => {
  for (const url of bothForms(PATHS.login)) {
    fastify.get<{ Querystring: { next?: string } }>(url, { schema: { querystring } }, async (request, reply) => {
      const next = checkNextUrl(request.query.next) ?? '/'
      if (request.ssoUser !== null) return reply.redirect(next)
      let token: string
      try {
        token = await client.obtain(next)
      } catch (err) {
        const error = err as FastifyError
        request.log.warn({ audit: 'login_failed', step: 'obtain', code: error.code }, 'could not obtain a request token from the gateway')
        return sendErrorPage(reply, error, loginHref(next))
      }
      const session = sessionOf(request)
      session.ssoRequest = { token, next }
      session.seenAt = Date.now()
      request.log.info({ audit: 'login_started' }, 'sign-in started, browser sent to the gateway')
      return reply.redirect(`${options.gatewayUrl}${PATHS.login}/?sso=${encodeURIComponent(token)}`)
    })
  }
}
