import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { escapeHtml, loginHref, sendPage } from '../html.js'
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

/** What the signed-out page says happened, per scope. */
const SIGNED_OUT_TEXT: Record<LogoutScope | 'unknown', string> = {
  app: 'You left this app. You are still signed in at the sign-in service and in the other apps you use there, so signing in here again may not ask for your password.',
  session: 'You are signed out of this browser: this app, the sign-in service and every app you reached through it in this browser. Your other devices stay signed in.',
  everywhere: 'You are signed out everywhere: every app, on every device.',
  unknown: 'You are signed out of this app.'
}

/**
 * `GET /logout/`: the three ways to sign out, each a POST form (a GET never signs anyone out).
 * `POST /logout/` (CSRF-checked, `scope`): ends the local session, tells the gateway
 * unless the scope is `app`, 303 to `afterLogoutUrl`.
 * `GET /sso/signed-out/`: the default `afterLogoutUrl`, a page that never signs anyone in.
 */
export const logoutRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client, db }) => {
  const builtInPage = options.afterLogoutUrl === `${PATHS.signedOut}/` || options.afterLogoutUrl === PATHS.signedOut

  for (const url of bothForms(PATHS.logout)) {
    fastify.get(url, { schema: { querystring: { type: 'object' } } }, async (request, reply) => {
      const user = request.ssoUser
      if (user === null) {
        return sendPage(reply, 200, 'Sign out', `<p>You are not signed in.</p>\n<p><a href="${escapeHtml(loginHref('/'))}">Sign in</a></p>`)
      }
      const csrf = escapeHtml(reply.generateCsrf())
      const form = (scope: LogoutScope, id: string, label: string, help: string): string => `<form method="post" action="${PATHS.logout}/">
<input type="hidden" name="_csrf" value="${csrf}">
<input type="hidden" name="scope" value="${scope}">
<button type="submit" id="${id}">${label}</button> ${help}
</form>`
      return sendPage(reply, 200, 'Sign out', `<p>Signed in as ${escapeHtml(user.username)}.</p>
${form('app', 'leave', 'Leave this app', 'Ends your session here only; you stay signed in elsewhere.')}
${form('session', 'logout', 'Sign out', 'Ends this browser&#39;s single sign-on session: here, at the sign-in service and in every app it reached. Other devices stay signed in.')}
${form('everywhere', 'logout-everywhere', 'Sign out everywhere', 'Ends every session of yours, in every app, on every device.')}`)
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
      if (user !== null) {
        return sendPage(reply, 200, 'You are signed in', `<p>Signed in as ${escapeHtml(user.username)}.</p>\n<p><a href="/">Home</a> · <a href="${PATHS.logout}/">Sign out</a></p>`)
      }
      const scope = request.query.scope
      const text = scope !== undefined && (SCOPES as readonly string[]).includes(scope) ? SIGNED_OUT_TEXT[scope] : SIGNED_OUT_TEXT.unknown
      const warning = request.query.gateway === 'unreachable'
        ? `\n<p id="gateway-unreachable">The sign-in service could not be reached: you may still be signed in there. <a href="${escapeHtml(`${options.gatewayUrl}${PATHS.logout}/`)}">Sign out at the sign-in service</a></p>`
        : ''
      return sendPage(reply, 200, 'You are signed out', `<p id="signed-out">${escapeHtml(text)}</p>${warning}
<p><a id="sign-in-again" href="${escapeHtml(loginHref('/'))}">Sign in again</a></p>`)
    })
  }
}
