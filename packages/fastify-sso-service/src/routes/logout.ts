import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { loginHref, sendPage, translate, type PageLink } from '../html.js'
import { sessionOf } from '../session.js'

/** What a sign-out ends: this app only, this browser's SSO session, or every session of the user. */
export type LogoutScope = 'app' | 'session' | 'everywhere'

const SCOPES = ['app', 'session', 'everywhere'] as const

const body = {
  type: 'object',
  properties: {
    _csrf: { type: 'string', maxLength: 256 },
    scope: { type: 'string', enum: SCOPES }
  }
} as const

/**
 * `GET /logout/`: the three ways to sign out, each a POST form (a GET never signs anyone out).
 * `POST /logout/` (CSRF-checked, `scope`): ends the local session, tells the gateway
 * unless the scope is `app`, 303 to `afterLogoutUrl`.
 * `GET /sso/signed-out/`: the default `afterLogoutUrl`, a page that never signs anyone in.
 */
export const logoutRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client, db, pages }) => {
  const builtInPage = options.afterLogoutUrl === `${PATHS.signedOut}/` || options.afterLogoutUrl === PATHS.signedOut

  for (const url of bothForms(PATHS.logout)) {
    fastify.get(url, { schema: { querystring: { type: 'object' } } }, async (request, reply) => {
      const user = request.ssoUser
      const t = translate(pages, request)
      return await sendPage(reply, pages, 'logout', 200, {
        heading: t('service.logout.heading'),
        user: user === null ? null : { username: user.username },
        action: `${PATHS.logout}/`,
        csrfToken: user === null ? '' : reply.generateCsrf(),
        loginHref: loginHref('/')
      })
    })

    fastify.post<{ Body: { scope?: LogoutScope } }>(url, { schema: { body }, preHandler: fastify.csrfProtection }, async (request, reply) => {
      const user = request.ssoUser
      const ssoSession = sessionOf(request).sso ?? null
      let scope: LogoutScope = request.body?.scope ?? 'session'
      await request.session.destroy()
      request.ssoUser = null
      reply.clearCookie(options.cookieName, { path: '/' })
      let reported = true
      if (user !== null) {
        // Without an SSO session id (a django-sso gateway), the gateway can only end every session.
        if (scope === 'session' && ssoSession === null) scope = 'everywhere'
        // What the scope ends here is ended here at once, whatever the gateway answers: a
        // django-sso gateway tells every service but the one that asked, and an unreachable
        // gateway must not leave the user's other sessions in this app alive.
        const ended = scope === 'everywhere'
          ? await db.store.destroyByUser(user.username)
          : scope === 'session' ? await db.store.destroyBySsoSession(ssoSession as string) : 0
        request.log.info({ audit: 'logout', user: user.username, scope, sessionsEnded: ended }, 'logged out')
        if (scope !== 'app') {
          try {
            await client.deauthenticate(user.username, scope === 'session' ? ssoSession : null)
          } catch (err) {
            reported = false
            request.log.warn({ audit: 'logout_report_failed', user: user.username, scope, code: (err as FastifyError).code }, 'could not tell the gateway about the logout')
          }
        }
      }
      const target = builtInPage ? `${PATHS.signedOut}/?scope=${scope}${reported ? '' : '&gateway=unreachable'}` : options.afterLogoutUrl
      return reply.redirect(target, 303)
    })
  }

  for (const url of bothForms(PATHS.signedOut)) {
    fastify.get<{ Querystring: { scope?: LogoutScope, gateway?: string } }>(url, {
      schema: { querystring: { type: 'object', properties: { scope: { type: 'string', maxLength: 20 }, gateway: { type: 'string', maxLength: 20 } } } }
    }, async (request, reply) => {
      const user = request.ssoUser
      const t = translate(pages, request)
      const home: PageLink = { href: '/', label: t('common.home') }
      if (user !== null) {
        return await sendPage(reply, pages, 'message', 200, {
          heading: t('service.signedIn.heading'),
          paragraphs: [{ text: t('common.signedInAs', { user: user.username }) }],
          links: [{ ...home, button: 'primary' }, { href: `${PATHS.logout}/`, label: t('common.signOut') }]
        })
      }
      const given = request.query.scope
      const scope = given !== undefined && (SCOPES as readonly string[]).includes(given) ? given : 'unknown'
      const again: PageLink = scope === 'app'
        // Still signed in at the gateway: this link brings the person straight back, signed in.
        ? { href: loginHref('/'), label: t('service.signedOut.backToApp'), id: 'sign-in-again', button: 'primary' }
        : { href: loginHref('/'), label: t('common.signInAgain'), id: 'sign-in-again', button: 'primary' }
      return await sendPage(reply, pages, 'signedOut', 200, {
        heading: t(scope === 'app' ? 'service.signedOut.app.heading' : scope === 'everywhere' ? 'service.signedOut.everywhere.heading' : 'service.signedOut.heading'),
        scope,
        text: t(scope === 'app' ? 'service.signedOut.app' : scope === 'session' ? 'service.signedOut.session' : scope === 'everywhere' ? 'service.signedOut.everywhere' : 'service.signedOut.unknown'),
        gatewayUnreachable: request.query.gateway === 'unreachable',
        gatewayLogoutHref: `${options.gatewayUrl}${PATHS.logout}/`,
        links: [again, home]
      })
    })
  }
}
