import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { checkNextUrl, MAX_NEXT_URL_LENGTH, PATHS } from 'fastify-sso-protocol'
import type { SsoPrompt } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { LimitsUnavailableError, TooManySignInsError } from '../errors.js'
import { loginHref, sendErrorPage } from '../html.js'
import { sessionOf } from '../session.js'

const querystring = {
  type: 'object',
  properties: {
    next: { type: 'string', maxLength: MAX_NEXT_URL_LENGTH * 3 },
    prompt: { type: 'string', enum: ['none', 'login'] }
  }
} as const

/**
 * `GET /login/?next=/x&prompt=none|login`: obtains a request token and sends the
 * browser to the gateway. `prompt=none`: a passive check (never a form; back
 * anonymous if not signed in there). `prompt=login`: the password is asked again,
 * even from a signed-in user.
 */
export const loginRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client, pages }) => {
  const { max, timeWindow } = options.loginRateLimit
  for (const url of bothForms(PATHS.login)) {
    fastify.get<{ Querystring: { next?: string, prompt?: SsoPrompt } }>(url, { schema: { querystring } }, async (request, reply) => {
      const next = checkNextUrl(request.query.next) ?? '/'
      const prompt = request.query.prompt
      if (request.ssoUser !== null && prompt !== 'login') return reply.redirect(next)
      let window
      try {
        window = await options.limits.hit(`login:${request.ip}`, timeWindow)
      } catch (err) {
        // Fail closed: no request token is spent at the gateway while nothing counts them.
        request.log.error({ err }, 'fastify-sso-service: the limits store did not answer; sign-in refused')
        return sendErrorPage(reply.header('retry-after', 5), pages, new LimitsUnavailableError(), loginHref(next, prompt))
      }
      if (window.count > max) {
        const wait = Math.max(window.resetAt - Date.now(), 1000)
        request.log.warn({ audit: 'login_throttled', step: 'obtain' }, 'too many sign-ins started by one client')
        return sendErrorPage(reply.header('retry-after', Math.ceil(wait / 1000)), pages, new TooManySignInsError(), loginHref(next, prompt))
      }
      let token: string
      try {
        token = await client.obtain(next, prompt)
      } catch (err) {
        const error = err as FastifyError
        request.log.warn({ audit: 'login_failed', step: 'obtain', code: error.code }, 'could not obtain a request token from the gateway')
        return sendErrorPage(reply, pages, error, loginHref(next, prompt))
      }
      const session = sessionOf(request)
      const now = Date.now()
      session.ssoRequest = { token, next, startedAt: now, ...(prompt === undefined ? {} : { prompt }) }
      session.seenAt = now
      request.log.info({ audit: 'login_started', prompt }, 'sign-in started, browser sent to the gateway')
      return reply.redirect(`${options.gatewayUrl}${PATHS.login}/?sso=${encodeURIComponent(token)}`)
    })
  }
}
