import type { FastifyInstance } from 'fastify'
import { MAX_TOKEN_LENGTH } from 'fastify-sso-protocol'
import Bowser from 'bowser'
import type { Translate } from 'fastify-sso-protocol/pages'
import { currentUser, redirect, type RouteContext } from '../context.js'
import { localeOf, sendPage } from '../pages.js'

const revokeBody = {
  type: 'object',
  required: ['session'],
  properties: {
    _csrf: { type: 'string', maxLength: 512 },
    session: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH }
  }
} as const

/** "Firefox on Linux" from a User-Agent (bowser), or "Unknown browser". */
export function deviceName (userAgent: string | null, t: Translate): string {
  if (userAgent === null || userAgent.trim() === '') return t('sessions.unknownBrowser')
  const parser = Bowser.getParser(userAgent)
  const browser = parser.getBrowserName()
  const os = parser.getOSName()
  if (browser === '') return t('sessions.unknownBrowser')
  if (os === '') return browser
  return t('sessions.browserOn', { browser, os })
}

const UNITS: Array<[Intl.RelativeTimeFormatUnit, number]> = [['year', 31_536_000_000], ['month', 2_592_000_000], ['week', 604_800_000],
  ['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000]]

/** "5 minutes ago", "yesterday" in the locale (Intl), for a past time. */
export function relativeTime (at: number, now: number, locale: string): string {
  const ago = Math.max(0, now - at)
  const format = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  if (ago < 45_000) return format.format(0, 'second')
  const [unit, ms] = UNITS.find(([, size]) => ago >= size) as [Intl.RelativeTimeFormatUnit, number]
  return format.format(-Math.round(ago / ms), unit)
}

/** `/sessions/`: the signed-in user sees their SSO sessions and ends one, or all others. */
export async function sessionRoutes (fastify: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { gateway, options, pages } = ctx
  const checkForm = ctx.formTokens.preHandler(fastify)

  fastify.get('/sessions/', async (request, reply) => {
    const user = await currentUser(request, ctx)
    if (user === null) return redirect(reply, '/login/')
    const current = request.session.get('sso')
    const locale = localeOf(pages, request)
    const t = pages.translator(locale)
    const names = new Map((await gateway.listServices()).map((s) => [s.name, s.displayName ?? s.name]))
    const dates = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' })
    const now = Date.now()
    const sessions = (await gateway.listSessions(user.username))
      .map((s) => ({
        ...s,
        services: s.services.map((name) => names.get(name) ?? name),
        current: s.id === current,
        device: deviceName(s.userAgent, t),
        createdIso: new Date(s.createdAt).toISOString(),
        lastSeenIso: new Date(s.lastSeenAt).toISOString(),
        createdRelative: relativeTime(s.createdAt, now, locale),
        lastSeenRelative: relativeTime(s.lastSeenAt, now, locale),
        createdAt: dates.format(s.createdAt),
        lastSeenAt: dates.format(s.lastSeenAt)
      }))
      // This browser first, then the most recently used.
      .sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeenIso.localeCompare(a.lastSeenIso))
    return await sendPage(reply.header('cache-control', 'no-store'), pages, 'sessions', 200, {
      title: options.title, heading: t('sessions.heading'), username: user.username, sessions, csrfToken: await reply.generateCsrf()
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
