/**
 * A small admin API for the example gateway (enabled by ADMIN_TOKEN): each route is one
 * call of the `fastify.ssoGateway` decorator API. A real deployment would put its own
 * admin UI and authentication here.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

interface Body {
  username?: string
  newUsername?: string
  password?: string
  ssoSession?: string
  endSessions?: 'none' | 'others' | 'all'
  group?: string
  service?: string
  users?: string[]
  groups?: string[]
  fields?: string[] | null
  displayName?: string | null
  logoUrl?: string | null
  attributes?: Record<string, unknown>
  enabled?: boolean
  isStaff?: boolean
  isSuperuser?: boolean
}

export const adminRoutes: FastifyPluginAsync<{ token: string }> = async (app, { token }) => {
  const expected = digest(`Bearer ${token}`)
  app.addHook('onRequest', async (request, reply) => {
    if (!timingSafeEqual(digest(String(request.headers.authorization)), expected)) {
      return await reply.code(401).send({ error: 'admin token required' })
    }
  })
  const sso = app.ssoGateway
  const routes: Record<string, (b: Body) => Promise<unknown>> = {
    '/sessions/list': async (b) => await sso.listSessions(b.username ?? ''),
    '/sessions/revoke': async (b) => await sso.revokeSession(b.username ?? '', b.ssoSession ?? ''),
    '/users/password': async (b) => await sso.changePassword(b.username ?? '', b.password ?? '', { endSessions: b.endSessions ?? 'others' }),
    '/users/disable': async (b) => await sso.disableUser(b.username ?? ''),
    '/users/enable': async (b) => await sso.updateUser(b.username ?? '', { isActive: true }),
    '/users/delete': async (b) => { await sso.deleteUser(b.username ?? '') },
    '/users/rename': async (b) => await sso.renameUser(b.username ?? '', b.newUsername ?? ''),
    '/users/attributes': async (b) => await sso.updateUser(b.username ?? '', { attributes: b.attributes ?? {} }),
    '/users/flags': async (b) => await sso.updateUser(b.username ?? '', {
      ...(b.isStaff === undefined ? {} : { isStaff: b.isStaff === true }),
      ...(b.isSuperuser === undefined ? {} : { isSuperuser: b.isSuperuser === true })
    }),
    '/groups/create': async (b) => { await sso.groups.create(b.group ?? '') },
    '/groups/add-member': async (b) => { await sso.groups.addMember(b.group ?? '', b.username ?? '') },
    '/groups/remove-member': async (b) => { await sso.groups.removeMember(b.group ?? '', b.username ?? '') },
    '/services/access': async (b) => await sso.updateService(b.service ?? '', {
      access: b.users === undefined && b.groups === undefined ? null : { users: b.users ?? [], groups: b.groups ?? [] }
    }),
    '/services/fields': async (b) => await sso.updateService(b.service ?? '', { fields: b.fields ?? null }),
    '/services/appearance': async (b) => await sso.updateService(b.service ?? '', {
      ...(b.displayName === undefined ? {} : { displayName: b.displayName }),
      ...(b.logoUrl === undefined ? {} : { logoUrl: b.logoUrl })
    }),
    '/services/enabled': async (b) => await sso.setServiceEnabled(b.service ?? '', b.enabled === true),
    '/events/status': async () => await sso.events.status(),
    '/events/dead': async () => await sso.events.dead()
  }
  for (const [path, run] of Object.entries(routes)) {
    app.post(path, async (request) => ({ ok: true, result: (await run((request.body ?? {}) as Body)) ?? null }))
  }
}
