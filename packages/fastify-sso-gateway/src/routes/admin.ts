import { readFileSync } from 'node:fs'
import type { CompiledPage } from 'fastify-sso-protocol/pages'
import { adminLocale, adminTranslator, type AdminMessageKey, type AdminText } from '../admin-messages.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { confirmSession, currentUser, redirect, type RouteContext } from '../context.js'
import { actingAs } from '../gateway.js'
import { MAX_PASSWORD_LENGTH } from '../passwords.js'
import { localeOf, VIEWS_DIR } from '../pages.js'
import type { AuditFilter } from '../store/store.js'
import type { UserRecord } from '../types.js'

declare module 'fastify' {
  interface Session {
    /** Admin console: the outcome of the last change, shown once on the next page. */
    adminFlash?: { kind: 'ok' | 'error', text: string }
  }
  interface FastifyRequest {
    /** Admin console: the signed-in admin (null outside the console). */
    ssoAdmin: UserRecord | null
  }
}

const ADMIN_PAGES = ['home', 'users', 'user', 'groups', 'services', 'service', 'sessions', 'audit', 'confirm', 'secrets', 'refused'] as const
type AdminPage = typeof ADMIN_PAGES[number]

/** Form fields: short strings, each at most this long. */
const FIELD = { type: 'string', maxLength: 2048 } as const
const form = (required: string[], fields: Record<string, object>) => ({
  type: 'object', required, properties: { _csrf: { type: 'string', maxLength: 512 }, ...fields }
}) as const

const NAV: Array<{ href: string, label: AdminMessageKey }> = [
  { href: '/', label: 'nav.overview' },
  { href: '/users', label: 'nav.users' },
  { href: '/groups', label: 'nav.groups' },
  { href: '/services', label: 'nav.services' },
  { href: '/sessions', label: 'nav.sessions' },
  { href: '/audit', label: 'nav.audit' }
]

const list = (text: string | undefined): string[] => (text ?? '').split(/[\s,]+/).filter((s) => s !== '')
const iso = (ms: number | null | undefined): string => ms === null || ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'
/** A time filter from a form's `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (UTC), or undefined. */
const time = (text: string | undefined): number | undefined => {
  if (text === undefined || text === '') return undefined
  const ms = Date.parse(/T|\s/.test(text) ? `${text.replace(' ', 'T')}Z` : `${text}T00:00Z`)
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * The admin console: server-rendered pages under `admin.prefix`, for users with the admin role
 * signed in at the gateway. Every change needs the password entered within `admin.stepUp`, a
 * CSRF token, and writes an audit record naming the admin (through `actingAs`). Never framed.
 */
export async function adminRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options, pages } = ctx
  const admin = options.admin as NonNullable<typeof options.admin>
  const P = admin.prefix
  // The console's pages use the kit's Eta: its layout (`@layout`, through `@admin-layout`) and partials.
  const eta = pages.eta
  eta.loadTemplate('@admin-layout', readFileSync(`${VIEWS_DIR}admin-layout.eta`, 'utf8'))
  const views = Object.fromEntries(ADMIN_PAGES.map((name) =>
    [name, eta.compile(readFileSync(`${VIEWS_DIR}admin-${name}.eta`, 'utf8'))])) as Record<AdminPage, CompiledPage>

  fastify.decorateRequest('ssoAdmin', null)

  /** The console's locale of a request (English when it has no texts in the pages' locale) and its texts. */
  const localeFor = (request: FastifyRequest): string => adminLocale(localeOf(pages, request))
  const T = (request: FastifyRequest): AdminText => adminTranslator(localeFor(request))

  async function isAdmin (user: UserRecord): Promise<boolean> {
    const role = admin.role
    if ('flag' in role) return user[role.flag]
    return (await gateway.groups.of(user.username)).includes(role.group)
  }

  async function render (request: FastifyRequest, reply: FastifyReply, page: AdminPage, heading: string, data: object, status = 200): Promise<FastifyReply> {
    const session = request.session
    const flash = session.get('adminFlash') ?? null
    if (flash !== null) session.set('adminFlash', undefined)
    // A refused visitor gets no CSRF secret (and so no session row of its own).
    const csrfToken = request.ssoAdmin === null ? '' : await reply.generateCsrf()
    const locale = localeFor(request)
    const html = views[page].call(eta, {
      ...pages.frame(locale), c: adminTranslator(locale), P, heading, csrfToken, admin: request.ssoAdmin?.username ?? null, nav: NAV, flash, ...data
    })
    return await reply.code(status).type('text/html; charset=utf-8').header('content-language', locale).header('vary', 'accept-language').send(html)
  }

  const back = (request: FastifyRequest, reply: FastifyReply, to: string, kind: 'ok' | 'error', text: string): FastifyReply => {
    request.session.set('adminFlash', { kind, text })
    return redirect(reply, `${P}${to}`, 303)
  }

  // Never framed, never cached. The Referer goes to this site only: a change refused for a stale
  // sign-in returns, after the password, to the page its form was on.
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('x-frame-options', 'DENY').header('cache-control', 'no-store').header('referrer-policy', 'same-origin')
  })

  // Who may come in: a signed-in admin; the step-up page is the only one a stale admin may post.
  fastify.addHook('preHandler', async (request, reply) => {
    const user = await currentUser(request, ctx)
    if (user === null) {
      return await render(request, reply, 'refused', T(request)('heading.signInFirst'), { reason: 'signin' }, 401)
    }
    if (!await isAdmin(user)) {
      request.log.warn({ audit: 'admin_refused', user: user.username }, 'sso admin console refused: not an admin')
      // Its hooks run for the console's routes only (never for a 404), each of which has a url.
      await gateway.audit('admin_refused', { user: user.username, detail: { url: request.routeOptions.url as string } })
      return await render(request, reply, 'refused', T(request)('heading.notAdmin'), { reason: 'role', username: user.username }, 403)
    }
    request.ssoAdmin = user
    if (request.method === 'POST' && request.routeOptions.url !== `${P}/confirm`) {
      const authAt = request.session.get('authAt') ?? 0
      if (Date.now() - authAt > admin.stepUp) {
        request.log.info({ audit: 'admin_step_up_required', user: user.username }, 'sso admin change needs the password again')
        const from = request.headers.referer
        const next = typeof from === 'string' && URL.canParse(from) ? new URL(from).pathname : `${P}/`
        return redirect(reply, `${P}/confirm?next=${encodeURIComponent(next)}`, 303)
      }
    }
  })

  /** Runs an admin's change as them (audit records name them); a refusal returns to `to` with its message. */
  async function change (request: FastifyRequest, reply: FastifyReply, to: string, fn: () => Promise<string | FastifyReply>): Promise<FastifyReply> {
    const user = request.ssoAdmin as UserRecord
    try {
      const done = await actingAs(`admin:${user.username}`, fn)
      return typeof done === 'string' ? back(request, reply, to, 'ok', done) : done
    } catch (err) {
      const e = err as { code?: unknown, statusCode?: number, message: string }
      // A refusal is a gateway error below 500 (one without a status counts as 500: NaN < 500 is false).
      const refusal = typeof e.code === 'string' && e.code.startsWith('FST_SSO_GATEWAY_') && Number(e.statusCode) < 500
      if (!refusal) throw err
      return back(request, reply, to, 'error', e.message)
    }
  }

  const csrf = fastify.csrfProtection
  const post = (url: string, schema: object, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>): void => {
    fastify.post(url, { preHandler: csrf, bodyLimit: 16 * 1024, schema: { body: schema } }, handler)
  }

  // ------------------------------------------------------------------ overview

  fastify.get('/', async (request, reply) => {
    const services = await gateway.listServices()
    const names = new Map(services.map((s) => [s.id, s.displayName ?? s.name]))
    const delivery = (await gateway.events.status()).map((s) => ({ ...s, service: names.get(s.serviceId) as string /* services are never deleted */, failingSince: iso(s.failingSince) }))
    return await render(request, reply, 'home', T(request)('heading.home'), { services: services.length, delivery })
  })

  // --------------------------------------------------------------------- users

  fastify.get('/users', { schema: { querystring: { type: 'object', properties: { q: { type: 'string', maxLength: 150 }, after: { type: 'string', maxLength: 150 } } } } }, async (request, reply) => {
    const { q = '', after = '' } = request.query as { q?: string, after?: string }
    const users = await gateway.listUsers({ prefix: q.normalize('NFKC').toLowerCase(), after, limit: 50 })
    return await render(request, reply, 'users', T(request)('heading.users'), { users, q, next: users.length === 50 ? users[49]?.username : null })
  })

  post('/users', form(['username'], { username: FIELD, password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH }, email: FIELD, displayName: FIELD, isStaff: FIELD, isSuperuser: FIELD }), async (request, reply) => {
    const b = request.body as Record<string, string | undefined>
    return await change(request, reply, '/users', async () => {
      const user = await gateway.createUser({
        username: b.username as string,
        ...(b.password === undefined || b.password === '' ? {} : { password: b.password }),
        email: b.email === undefined || b.email === '' ? null : b.email,
        displayName: b.displayName === undefined || b.displayName === '' ? null : b.displayName,
        isStaff: b.isStaff === 'on',
        isSuperuser: b.isSuperuser === 'on'
      })
      return back(request, reply, `/users/${encodeURIComponent(user.username)}`, 'ok', T(request)('done.userCreated', { user: user.username }))
    })
  })

  fastify.get('/users/:username', async (request, reply) => {
    const { username } = request.params as { username: string }
    const user = await gateway.getUser(username)
    if (user === null) return back(request, reply, '/users', 'error', T(request)('error.noUser', { user: username }))
    const [groups, allGroups, sessions] = await Promise.all([gateway.groups.of(user.username), gateway.groups.list(), gateway.listSessions(user.username)])
    return await render(request, reply, 'user', T(request)('heading.user', { user: user.username }), {
      user, groups, otherGroups: allGroups.filter((g) => !groups.includes(g)), sessions: sessions.map((s) => ({ ...s, createdAt: iso(s.createdAt), lastSeenAt: iso(s.lastSeenAt) }))
    })
  })

  const userPath = (request: FastifyRequest): [string, string] => {
    const { username } = request.params as { username: string }
    return [username, `/users/${encodeURIComponent(username)}`]
  }

  post('/users/:username', form([], { email: FIELD, displayName: FIELD, isStaff: FIELD, isSuperuser: FIELD }), async (request, reply) => {
    const [username, to] = userPath(request)
    const b = request.body as Record<string, string | undefined>
    return await change(request, reply, to, async () => {
      await gateway.updateUser(username, {
        email: b.email === undefined || b.email === '' ? null : b.email,
        displayName: b.displayName === undefined || b.displayName === '' ? null : b.displayName,
        isStaff: b.isStaff === 'on',
        isSuperuser: b.isSuperuser === 'on'
      })
      return T(request)('done.saved')
    })
  })

  post('/users/:username/active', form(['active'], { active: { enum: ['true', 'false'] } }), async (request, reply) => {
    const [username, to] = userPath(request)
    const active = (request.body as { active: string }).active === 'true'
    return await change(request, reply, to, async () => {
      await gateway.updateUser(username, { isActive: active })
      return active ? T(request)('done.enabled') : T(request)('done.userDisabled')
    })
  })

  post('/users/:username/password', form(['password'], { password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH } }), async (request, reply) => {
    const [username, to] = userPath(request)
    return await change(request, reply, to, async () => {
      const ended = await gateway.changePassword(username, (request.body as { password: string }).password, { endSessions: 'all' })
      return T(request)('done.passwordSet', { ended })
    })
  })

  post('/users/:username/delete', form(['confirm'], { confirm: FIELD }), async (request, reply) => {
    const [username, to] = userPath(request)
    if ((request.body as { confirm: string }).confirm !== username) return back(request, reply, to, 'error', T(request)('error.confirmDelete'))
    return await change(request, reply, to, async () => {
      await gateway.deleteUser(username)
      return back(request, reply, '/users', 'ok', T(request)('done.userDeleted', { user: username }))
    })
  })

  post('/users/:username/groups', form(['group', 'member'], { group: FIELD, member: { enum: ['add', 'remove'] } }), async (request, reply) => {
    const [username, to] = userPath(request)
    const { group, member } = request.body as { group: string, member: string }
    return await change(request, reply, to, async () => {
      if (member === 'add') await gateway.groups.addMember(group, username)
      else await gateway.groups.removeMember(group, username)
      return T(request)(member === 'add' ? 'done.addedTo' : 'done.removedFrom', { group })
    })
  })

  post('/users/:username/sessions', form([], { session: FIELD, from: FIELD }), async (request, reply) => {
    const [username, to] = userPath(request)
    const { session, from } = request.body as { session?: string, from?: string }
    const target = from === 'sessions' ? `/sessions?user=${encodeURIComponent(username)}` : to
    return await change(request, reply, target, async () => {
      if (session === undefined || session === '') return T(request)('done.signedOutEverywhere', { ended: await gateway.logoutUser(username) })
      return await gateway.revokeSession(username, session) ? T(request)('done.sessionEnded') : T(request)('done.sessionGone')
    })
  })

  // -------------------------------------------------------------------- groups

  fastify.get('/groups', async (request, reply) => {
    const groups = await Promise.all((await gateway.groups.list()).map(async (name) => ({ name, members: (await gateway.groups.members(name)).map((u) => u.username) })))
    return await render(request, reply, 'groups', T(request)('heading.groups'), { groups })
  })

  post('/groups', form(['name'], { name: FIELD }), async (request, reply) => {
    const { name } = request.body as { name: string }
    return await change(request, reply, '/groups', async () => {
      await gateway.groups.create(name.trim())
      return T(request)('done.groupCreated', { group: name.trim() })
    })
  })

  post('/groups/delete', form(['name'], { name: FIELD }), async (request, reply) => {
    const { name } = request.body as { name: string }
    return await change(request, reply, '/groups', async () => await gateway.groups.delete(name) ? T(request)('done.groupDeleted', { group: name }) : T(request)('error.noGroup', { group: name }))
  })

  // ------------------------------------------------------------------ services

  fastify.get('/services', async (request, reply) => {
    return await render(request, reply, 'services', T(request)('heading.services'), { services: await gateway.listServices() })
  })

  const serviceFields = { displayName: FIELD, baseUrl: FIELD, eventUrl: FIELD, protocol: FIELD, fields: FIELD, freshLogin: FIELD, logoUrl: FIELD }
  const fieldsOf = (text: string | undefined): string[] | null => text === undefined || text.trim() === '' ? null : list(text)

  post('/services', form(['name', 'baseUrl'], { name: FIELD, ...serviceFields }), async (request, reply) => {
    const b = request.body as Record<string, string | undefined>
    return await change(request, reply, '/services', async () => {
      const registered = await gateway.registerService({
        name: b.name as string,
        baseUrl: b.baseUrl as string,
        ...(b.eventUrl === undefined || b.eventUrl === '' ? {} : { eventUrl: b.eventUrl }),
        ...(b.protocol === undefined || b.protocol === '' ? {} : { protocol: b.protocol as 'fastify-sso' }),
        ...(b.displayName === undefined || b.displayName === '' ? {} : { displayName: b.displayName }),
        fields: fieldsOf(b.fields),
        requireFreshLogin: b.freshLogin === 'on'
      })
      return await render(request, reply, 'secrets', T(request)('heading.registered', { service: registered.service.name }), {
        service: registered.service, secret: registered.secret, signingSecret: registered.signingSecret, overlapUntil: null
      })
    })
  })

  fastify.get('/services/:name', async (request, reply) => {
    const { name } = request.params as { name: string }
    const service = await gateway.getService(name)
    if (service === null) return back(request, reply, '/services', 'error', T(request)('error.noService', { service: name }))
    const status = (await gateway.events.status()).find((s) => s.serviceId === service.id) ?? { pending: 0, dead: 0, failingSince: null }
    const dead = (await gateway.events.dead(1000)).filter((e) => e.serviceId === service.id).slice(0, 100)
      .map((e) => ({ id: e.id, type: (JSON.parse(e.payload) as { type?: string }).type, attempts: e.attempts, lastError: e.lastError, createdAt: iso(e.createdAt) }))
    const lastError = await gateway.lastDeliveryError(service.id)
    const users = service.access === null ? [] : (await Promise.all(service.access.users.map(async (id) => (await gateway.userById(id))?.username))).filter((u) => u !== undefined)
    return await render(request, reply, 'service', T(request)('heading.service', { service: service.displayName ?? service.name }), {
      service, users, status: { ...status, failingSince: iso(status.failingSince) }, lastError, dead, overlapUntil: iso(service.overlapUntil)
    })
  })

  const servicePath = (request: FastifyRequest): [string, string] => {
    const { name } = request.params as { name: string }
    return [name, `/services/${encodeURIComponent(name)}`]
  }

  post('/services/:name', form(['baseUrl'], serviceFields), async (request, reply) => {
    const [name, to] = servicePath(request)
    const b = request.body as Record<string, string | undefined>
    return await change(request, reply, to, async () => {
      await gateway.updateService(name, {
        baseUrl: b.baseUrl as string,
        ...(b.eventUrl === undefined || b.eventUrl === '' ? {} : { eventUrl: b.eventUrl }),
        displayName: b.displayName === undefined || b.displayName === '' ? null : b.displayName,
        logoUrl: b.logoUrl === undefined || b.logoUrl === '' ? null : b.logoUrl,
        fields: fieldsOf(b.fields),
        requireFreshLogin: b.freshLogin === 'on'
      })
      return T(request)('done.saved')
    })
  })

  post('/services/:name/enabled', form(['enabled'], { enabled: { enum: ['true', 'false'] } }), async (request, reply) => {
    const [name, to] = servicePath(request)
    const enabled = (request.body as { enabled: string }).enabled === 'true'
    return await change(request, reply, to, async () => {
      await gateway.setServiceEnabled(name, enabled)
      return enabled ? T(request)('done.enabled') : T(request)('done.serviceDisabled')
    })
  })

  post('/services/:name/access', form(['mode'], { mode: { enum: ['everyone', 'listed'] }, users: FIELD, groups: FIELD }), async (request, reply) => {
    const [name, to] = servicePath(request)
    const b = request.body as { mode: string, users?: string, groups?: string }
    return await change(request, reply, to, async () => {
      await gateway.updateService(name, { access: b.mode === 'everyone' ? null : { users: list(b.users), groups: list(b.groups) } })
      return b.mode === 'everyone' ? T(request)('done.openToAll') : T(request)('done.accessSaved')
    })
  })

  post('/services/:name/rotate', form([], { secret: FIELD, signingSecret: FIELD, overlapHours: { type: 'string', pattern: '^\\d{1,3}$' } }), async (request, reply) => {
    const [name, to] = servicePath(request)
    const b = request.body as { secret?: string, signingSecret?: string, overlapHours?: string }
    return await change(request, reply, to, async () => {
      const rotated = await gateway.rotateSecrets(name, {
        secret: b.secret === 'on', signingSecret: b.signingSecret === 'on', overlap: Number(b.overlapHours ?? '24') * 3_600_000
      })
      return await render(request, reply, 'secrets', T(request)('heading.rotated', { service: name }), {
        service: rotated.service, secret: rotated.secret ?? null, signingSecret: rotated.signingSecret ?? null, overlapUntil: iso(rotated.overlapUntil)
      })
    })
  })

  post('/services/:name/replay', form([], { event: FIELD }), async (request, reply) => {
    const [name, to] = servicePath(request)
    const { event } = request.body as { event?: string }
    return await change(request, reply, to, async () => {
      const service = await gateway.getService(name)
      if (service === null) return T(request)('error.noService', { service: name })
      const ids = event !== undefined && event !== ''
        ? [event]
        : (await gateway.events.dead(10_000)).filter((e) => e.serviceId === service.id).map((e) => e.id)
      let replayed = 0
      for (const id of ids) if (await gateway.events.replay(id)) replayed++
      return T(request)('done.replayed', { replayed })
    })
  })

  // ------------------------------------------------------------------ sessions

  fastify.get('/sessions', { schema: { querystring: { type: 'object', properties: { user: { type: 'string', maxLength: 150 } } } } }, async (request, reply) => {
    const { user = '' } = request.query as { user?: string }
    const found = user === '' ? null : await gateway.getUser(user)
    const sessions = found === null ? [] : (await gateway.listSessions(found.username)).map((s) => ({ ...s, createdAt: iso(s.createdAt), lastSeenAt: iso(s.lastSeenAt) }))
    return await render(request, reply, 'sessions', T(request)('heading.sessions'), { user, found: found?.username ?? null, sessions })
  })

  // ------------------------------------------------------------------- audit

  const auditQuery = { type: 'object', properties: Object.fromEntries(['user', 'service', 'kind', 'since', 'until', 'before'].map((k) => [k, { type: 'string', maxLength: 150 }])) }
  fastify.get('/audit', { schema: { querystring: auditQuery } }, async (request, reply) => {
    const q = request.query as Record<string, string | undefined>
    const filter: Partial<AuditFilter> = { limit: 100 }
    if (q.user !== undefined && q.user !== '') filter.user = q.user.normalize('NFKC').toLowerCase()
    if (q.service !== undefined && q.service !== '') filter.service = q.service
    if (q.kind !== undefined && q.kind !== '') filter.kind = q.kind
    const since = time(q.since)
    const until = time(q.until)
    if (since !== undefined) filter.since = since
    if (until !== undefined) filter.until = until
    if (q.before !== undefined && /^\d{1,15}$/.test(q.before)) filter.beforeId = Number(q.before)
    const records = (await gateway.auditLog(filter)).map((r) => ({ ...r, at: iso(r.at), detail: JSON.stringify(r.detail) }))
    const more = records.length === 100 ? new URLSearchParams({ ...Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined && v !== '')), before: String(records[99]?.id) }).toString() : null
    return await render(request, reply, 'audit', T(request)('heading.audit'), { q, records, more })
  })

  // ------------------------------------------------------------------ step-up

  const nextPath = (next: unknown): string => typeof next === 'string' && next.startsWith(`${P}/`) && !next.startsWith('//') && !next.includes('\\') ? next : `${P}/`

  fastify.get('/confirm', { schema: { querystring: { type: 'object', properties: { next: { type: 'string', maxLength: 2048 } } } } }, async (request, reply) => {
    return await render(request, reply, 'confirm', T(request)('heading.confirm'), { next: nextPath((request.query as { next?: string }).next), error: null })
  })

  fastify.post('/confirm', {
    preHandler: csrf,
    bodyLimit: 16 * 1024,
    schema: { body: form(['password'], { password: { type: 'string', maxLength: MAX_PASSWORD_LENGTH }, next: FIELD }) },
    config: { rateLimit: { max: options.loginRateLimit.max, timeWindow: options.loginRateLimit.timeWindow } }
  }, async (request, reply) => {
    const user = request.ssoAdmin as UserRecord
    const { password, next } = request.body as { password: string, next?: string }
    const { ok } = await gateway.verifyPassword(user, password)
    if (!ok) {
      request.log.warn({ audit: 'admin_step_up_failed', user: user.username }, 'sso admin password confirmation failed')
      await gateway.audit('admin_step_up_failed', { user: user.username })
      return await render(request, reply, 'confirm', T(request)('heading.confirm'), { next: nextPath(next), error: T(request)('error.wrongPassword') }, 401)
    }
    await confirmSession(request)
    await gateway.audit('admin_step_up', { user: user.username })
    return redirect(reply, nextPath(next), 303)
  })
}
