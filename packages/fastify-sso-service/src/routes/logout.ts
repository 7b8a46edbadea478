import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { escapeHtml, loginHref, sendPage } from '../html.js'
import { sessionOf } from '../session.js'

const body = {
  type: 'object',
  properties: { _csrf: { type: 'string', maxLength: 256 } }
} as const

/**
 * `GET /logout/`: a confirmation page with a POST form (a GET never logs anyone out).
 * `POST /logout/` (CSRF-checked): ends the local session, tells the gateway, 303 to `afterLogoutUrl`.
 */
export const logoutRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client }) => {
  for (const url of bothForms(PATHS.logout)) {
    fastify.get(url, { schema: { querystring: { type: 'object' } } }, async (request, reply) => {
      const user = request.ssoUser
      if (user === null) {
        return sendPage(reply, 200, 'Log out', `<p>You are not signed in.</p>\n<p><a href="${escapeHtml(loginHref('/'))}">Sign in</a></p>`)
      }
      const csrf = reply.generateCsrf()
      return sendPage(reply, 200, 'Log out', `<p>Signed in as ${escapeHtml(user.username)}.</p>
<form method="post" action="${PATHS.logout}/">
<input type="hidden" name="_csrf" value="${escapeHtml(csrf)}">
<button type="submit">Log out everywhere</button>
</form>`)
    })

    fastify.post(url, { schema: { body }, preHandler: fastify.csrfProtection }, async (request, reply) => {
      const user = request.ssoUser
      const ssoSession = sessionOf(request).sso ?? null
      await request.session.destroy()
      request.ssoUser = null
      reply.clearCookie(options.cookieName, { path: '/' })
      if (user !== null) {
        request.log.info({ audit: 'logout', user: user.username }, 'logged out')
        try {
          await client.deauthenticate(user.username, ssoSession)
        } catch (err) {
          request.log.warn({ audit: 'logout_report_failed', user: user.username, code: (err as FastifyError).code }, 'could not tell the gateway about the logout')
        }
      }
      return reply.redirect(options.afterLogoutUrl, 303)
    })
  }
}
