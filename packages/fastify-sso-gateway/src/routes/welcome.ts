import type { FastifyInstance } from 'fastify'
import { PATHS } from 'fastify-sso-protocol'
import { currentUser, type RouteContext } from '../context.js'
import { sendPage, STYLESHEET, translate } from '../pages.js'

/** `/welcome/`: who is signed in at the gateway. */
export async function welcomeRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { options, pages } = ctx
  for (const url of [PATHS.welcome, `${PATHS.welcome}/`]) {
    fastify.get(url, async (request, reply) => {
      const user = await currentUser(request, ctx)
      return await sendPage(reply.header('cache-control', 'no-store'), pages, 'welcome', 200, {
        title: options.title,
        heading: translate(pages, request)('welcome.heading'),
        user: user === null ? null : { username: user.username, displayName: user.displayName },
        csrfToken: user === null ? '' : await reply.generateCsrf()
      })
    })
  }
  fastify.get(STYLESHEET, async (_request, reply) =>
    await reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(pages.css))
}
