import type { FastifyInstance } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { currentUser, type RouteContext } from '../context.js'
import { sendMessage } from '../pages.js'

/**
 * Central logout. GET shows a confirmation form (a link or an image can never sign
 * anyone out); POST with the CSRF token ends the gateway session, every other session
 * of the user, and tells every service.
 */
export async function logoutRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options, pages } = ctx
  const signedOut = {
    heading: 'You are signed out',
    message: 'You are signed out of every application. Close the browser if it is a shared computer.',
    links: [{ href: '/login/', label: 'Sign in again' }]
  }

  for (const url of [PATHS.logout, `${PATHS.logout}/`]) {
    fastify.get(url, async (request, reply) => {
      const user = await currentUser(request, ctx)
      if (user === null) return await sendMessage(reply, pages, options.title, 200, signedOut)
      return await sendMessage(reply, pages, options.title, 200, {
        heading: 'Sign out?',
        message: `You are signed in as ${user.username}. Signing out ends your session here and in every application.`,
        form: { action: '/logout/', csrfToken: await reply.generateCsrf(), label: 'Sign out everywhere' },
        links: [{ href: '/welcome/', label: 'Stay signed in' }]
      })
    })

    fastify.post(url, { preHandler: fastify.csrfProtection, bodyLimit: 4096 }, async (request, reply) => {
      const user = await currentUser(request, ctx)
      await request.session.destroy()
      if (user !== null) {
        await gateway.logoutUser(user.username)
        request.log.info({ audit: 'logout', user: user.username }, 'sso sign-out at the gateway')
      }
      return await sendMessage(reply, pages, options.title, 200, signedOut)
    })
  }
}
