import type { FastifyPluginAsync } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { loginHref } from '../html.js'

/** `GET /sso/test/`: who am I here, as JSON; an anonymous visitor goes through the login. */
export const testPageRoutes: FastifyPluginAsync<RouteContext> = async (fastify) => {
  for (const url of bothForms(PATHS.test)) {
    fastify.get(url, { schema: { querystring: { type: 'object' } } }, async (request, reply) => {
      if (request.ssoUser === null) return reply.redirect(loginHref(`${PATHS.test}/`))
      return { user: request.ssoUser }
    })
  }
}
