import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { eventBodySchema, PATHS, safeEqual, verifyWebhook, WEBHOOK_HEADERS } from 'fastify-sso-protocol'
import type { SsoAccount, SsoEvent } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { AccountHookFailedError, BadSignatureError } from '../errors.js'

/** Largest event body accepted, in bytes. */
export const MAX_EVENT_BYTES = 64 * 1024

interface EventMeta {
  /** Webhook id, null for an unsigned django-sso event. */
  id: string | null
  /** Webhook timestamp in seconds, null for an unsigned event. */
  timestamp: number | null
}

const rawBodies = new WeakMap<FastifyRequest, string>()
const metas = new WeakMap<FastifyRequest, EventMeta>()

function jsonErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode <= 599 ? err.statusCode : 500
  if (status >= 500) request.log.error({ err }, 'fastify-sso-service: event failed')
  const error = status >= 500 && err.code !== 'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED' ? 'Internal error' : err.message
  return reply.code(status).header('cache-control', 'no-store').send({ error, code: err.code ?? 'FST_SSO_SERVICE_INTERNAL' })
}

/**
 * `POST /sso/event/`: events from the gateway. Verifies the Standard Webhooks
 * signature over the raw body (or, opted in, the django-sso body token),
 * applies each event id once, in timestamp order per user.
 */
export const eventRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, db }) => {
  fastify.removeAllContentTypeParsers()
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_EVENT_BYTES }, (request, body, done) => {
    rawBodies.set(request, body as string)
    parseJson(request, body as string, done)
  })
  fastify.setErrorHandler(jsonErrorHandler)

  /** Applies events for one user one at a time, so order checks and idempotency hold. */
  const queues = new Map<string, Promise<unknown>>()
  async function serialised<T> (key: string, work: () => Promise<T>): Promise<T> {
    const previous = queues.get(key) ?? Promise.resolve()
    const current = previous.then(work, work)
    const tail = current.catch(() => {})
    queues.set(key, tail)
    try {
      return await current
    } finally {
      if (queues.get(key) === tail) queues.delete(key)
    }
  }

  function reject (request: FastifyRequest, reason: string): never {
    request.log.warn({ audit: 'event_rejected', reason }, 'event refused')
    throw new BadSignatureError(reason)
  }

  async function verify (request: FastifyRequest): Promise<void> {
    const headers = request.headers
    const signed = headers[WEBHOOK_HEADERS.id] !== undefined || headers[WEBHOOK_HEADERS.timestamp] !== undefined || headers[WEBHOOK_HEADERS.signature] !== undefined
    if (!signed && options.acceptUnsignedEvents) {
      const body = request.body as { token?: unknown } | null | undefined
      const token = typeof body === 'object' && body !== null && typeof body.token === 'string' ? body.token : ''
      if (!safeEqual(token, options.token)) reject(request, 'missing signature or wrong token')
      metas.set(request, { id: null, timestamp: null })
      return
    }
    if (options.signingSecrets.length === 0) reject(request, 'signed events are not configured (no signingSecret)')
    const result = verifyWebhook({ secrets: options.signingSecrets, headers, body: rawBodies.get(request) ?? '' })
    if (!result.ok) reject(request, result.reason)
    metas.set(request, { id: result.id, timestamp: result.timestamp })
  }

  for (const url of bothForms(PATHS.event)) {
    fastify.post(url, { schema: { body: eventBodySchema }, preValidation: verify }, async (request) => {
      const event = request.body as SsoEvent
      const meta = metas.get(request) as EventMeta
      const log = request.log
      await serialised(event.username, async () => {
        if (meta.id !== null && db.isProcessed(meta.id)) {
          log.info({ audit: 'event_duplicate', type: event.type, user: event.username }, 'event already applied; acknowledged')
          return
        }
        if (event.type === 'update_account') {
          if (meta.timestamp !== null && meta.timestamp < db.lastAccountTimestamp(event.username)) {
            log.info({ audit: 'event_stale', user: event.username }, 'older update_account ignored')
            db.recordEvent(meta.id, null)
            return
          }
          const { type: _type, token: _token, sso_session: _sso, ...rest } = event as SsoAccount & { type: string, token?: string, sso_session?: string }
          const account: SsoAccount = { ...rest, is_active: rest.is_active ?? true, is_staff: rest.is_staff ?? false, is_superuser: rest.is_superuser ?? false }
          if (options.onAccount !== undefined) {
            try {
              await options.onAccount(account, { source: 'event', request, log })
            } catch (err) {
              log.error({ err, user: event.username }, 'onAccount failed on update_account')
              throw new AccountHookFailedError()
            }
          }
          let ended = 0
          if (!account.is_active) ended = db.store.destroyByUser(event.username)
          db.recordEvent(meta.id, meta.timestamp === null ? null : { username: event.username, timestamp: meta.timestamp })
          log.info({ audit: 'account_updated', user: event.username, active: account.is_active, sessionsEnded: ended }, 'update_account applied')
          return
        }
        const ssoSession = event.sso_session ?? null
        const ended = ssoSession === null ? db.store.destroyByUser(event.username) : db.store.destroyBySsoSession(ssoSession)
        log.info({ audit: 'deauthenticate', user: event.username, sessionsEnded: ended, ssoSession: ssoSession !== null }, 'sessions ended by the gateway')
        if (options.onDeauthenticate !== undefined) {
          await options.onDeauthenticate(event.username, { ssoSession, sessionsEnded: ended, request, log })
        }
        db.recordEvent(meta.id, null)
      })
      return { ok: true }
    })
  }
}
