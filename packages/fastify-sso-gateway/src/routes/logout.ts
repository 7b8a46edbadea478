import type { FastifyInstance } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { currentUser, type RouteContext } from '../context.js'
import { sendMessage, translate } from '../pages.js'

const logoutBody = {
  type: 'object',
  properties: {
    _csrf: { type: 'string', maxLength: 512 },
    scope: { type: 'string', enum: ['session', 'everywhere'] }
  }
} as const

/**
 * Central logout. GET shows the choices (a link or an image can never sign anyone out);
 * POST with the CSRF token ends this browser's SSO session (`scope=session`, the default:
 * the gateway session and every service session born from it) or every session of the
 * user on every device (`scope=everywhere`).
 */
export async function logoutRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options, pages } = ctx
  const checkForm = ctx.formTokens.preHandler(fastify)

  for (const url of [PATHS.logout, `${PATHS.logout}/`]) {
    fastify.get(url, async (request, reply) => {
      const user = await currentUser(request, ctx)
      const t = translate(pages, request)
      if (user === null) {
        return await sendMessage(reply, pages, options.title, 200, {
          heading: t('logout.none.heading'), message: t('logout.none.message'), links: [{ href: '/login/', label: t('common.signIn'), button: 'primary', id: 'login' }]
        })
      }
      const csrfToken = await reply.generateCsrf()
      return await sendMessage(reply, pages, options.title, 200, {
        heading: t('logout.confirm.heading'),
        message: t('logout.confirm.message', { user: user.username }),
        forms: [
          { action: '/logout/', csrfToken, label: t('common.signOut'), fields: { scope: 'session' }, id: 'logout', help: t('logout.confirm.session') },
          { action: '/logout/', csrfToken, label: t('common.signOutEverywhere'), fields: { scope: 'everywhere' }, id: 'logout-everywhere', variant: 'danger', help: t('logout.confirm.everywhere') }
        ],
        links: [{ href: '/welcome/', label: t('logout.stay'), id: 'stay' }]
      })
    })

    fastify.post(url, { preHandler: checkForm, bodyLimit: 4096, schema: { body: logoutBody } }, async (request, reply) => {
      const scope = (request.body as { scope?: 'session' | 'everywhere' } | undefined)?.scope ?? 'session'
      const user = await currentUser(request, ctx)
      const sso = request.session.get('sso')
      // Ending the SSO session deletes this browser session and queues the events in one
      // transaction; only then is the in-memory session dropped (a crash in between loses nothing).
      if (user !== null) {
        if (scope === 'everywhere') await gateway.logoutUser(user.username)
        else if (sso !== undefined) await gateway.endSsoSession(user, sso, 'logout')
        request.log.info({ audit: 'logout', scope, user: user.username }, 'sso sign-out at the gateway')
        await ctx.gateway.audit('logout', { user: user.username, detail: { scope } })
      }
      await request.session.destroy()
      const t = translate(pages, request)
      return await sendMessage(reply, pages, options.title, 200, {
        heading: t('logout.done.heading'),
        message: scope === 'everywhere' ? t('logout.done.everywhere') : t('logout.done.session'),
        links: [{ href: '/login/', label: t('common.signInAgain'), id: 'login' }]
      })
    })
  }
}
