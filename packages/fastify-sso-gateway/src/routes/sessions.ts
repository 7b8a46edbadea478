import type { FastifyInstance } from 'fastify'
import { MAX_TOKEN_LENGTH } from 'fastify-sso-protocol'
import { currentUser, redirect, type RouteContext } from '../context.js'

const revokeBody = {
  type: 'object',
  required: ['session'],
  properties: {
    _csrf: { type: 'string', maxLength: 512 },
    session: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH }
  }
} as const

/** `/sessions/`: the signed-in user sees their SSO sessions and ends one, or all others. */
export async function sessionRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options, pages } = ctx
  const checkForm = ctx.formTokens.preHandler(fastify)

  fastify.get('/sessions/', async (request, reply) => {
    const user = await currentUser(request, ctx)
    if (user === null) return redirect(reply, '/login/')
    const current = request.session.get('sso')
    const sessions = (await gateway.listSessions(user.username)).map((s) => ({
      ...s,
      current: s.id === current,
      createdAt: new Date(s.createdAt).toISOString(),
      lastSeenAt: new Date(s.lastSeenAt).toISOString()
    }))
    return await reply.header('cache-control', 'no-store').view(pages.sessions as never, {
      title: options.title, username: user.username, sessions, csrfToken: await reply.generateCsrf()
    })
  })

  fastify.post('/sessions/revoke', { preHandler: checkForm, bodyLimit: 4096, schema: { body: revokeBody } }, async (request, reply) => {
    const user = await currentUser(request, ctx)
    if (user === null) return redirect(reply, '/login/', 303)
    const session = (request.body as { session: string }).session
    // Only another session of this same user; the current one ends through /logout/.
    if (session !== request.session.get('sso')) await gateway.revokeSession(user.username, session)
    return redirect(reply, '/sessions/', 303)
  })

  fastify.post('/sessions/revoke-others', { preHandler: checkForm, bodyLimit: 4096 }, async (request, reply) => {
    const user = await currentUser(request, ctx)
    if (user === null) return redirect(reply, '/login/', 303)
    await gateway.revokeOtherSessions(user.username, request.session.get('sso') as string)
    return redirect(reply, '/sessions/', 303)
  })
}
