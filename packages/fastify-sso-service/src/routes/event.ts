import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { bodyDeadline, eventBodySchema, normalizeEvent, PATHS, safeEqual, verifyWebhook, WEBHOOK_HEADERS } from 'fastify-sso-protocol'
import type { AnySsoEvent, UpdateAccountEvent } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { BadSignatureError, InvalidEventError } from '../errors.js'
import { accountFrom } from '../gateway-client.js'

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

/** The event in its canonical shape; a body no dialect can read is a 400. */
function readEvent (body: Record<string, unknown>): AnySsoEvent {
  try {
    return normalizeEvent(body)
  } catch (err) {
    throw new InvalidEventError(`${String(body.type)}: ${(err as Error).message}`)
  }
}

/**
 * `POST /sso/event/`: events from the gateway, in any dialect (fastify-sso, django-sso 1.x,
 * django-sso 2.x/3.x: see `normalizeEvent`). Verifies the Standard Webhooks
 * signature over the raw body (or, opted in, the django-sso body token),
 * applies each event id once, one at a time per user, never an `update_account`
 * older than the last one applied (or than a later rename or deletion).
 */
export const eventRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, db, sync }) => {
  fastify.removeAllContentTypeParsers()
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_EVENT_BYTES }, (request, body, done) => {
    rawBodies.set(request, body as string)
    parseJson(request, body as string, done)
  })
  fastify.setErrorHandler(jsonErrorHandler)
  fastify.addHook('preParsing', bodyDeadline())

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
      const event = readEvent(request.body as Record<string, unknown>)
      const meta = metas.get(request) as EventMeta
      const log = request.log
      const origin = { request, log }
      if (event.type === 'update_fields') {
        // django-sso 2.x/3.x only, which signs nothing: no webhook id to de-duplicate.
        await sync.updateFields(event.usernames, event.fields, origin)
        log.info({ audit: 'account_fields_updated', users: event.usernames.length, fields: Object.keys(event.fields) }, 'fields of several accounts updated')
        return { ok: true }
      }
      await sync.serialised(event.user_id ?? event.username, async () => {
        if (meta.id !== null && await db.isProcessed(meta.id)) {
          log.info({ audit: 'event_duplicate', type: event.type, user: event.username }, 'event already applied; acknowledged')
          return
        }
        switch (event.type) {
          case 'update_account': {
            if (meta.timestamp !== null && meta.timestamp < await db.lastAccountTimestamp(event.username)) {
              log.info({ audit: 'event_stale', user: event.username }, 'older update_account ignored')
              await db.recordEvent(meta.id)
              return
            }
            const { type: _type, token: _token, sso_session: _sso, changed, ...rest } = event as UpdateAccountEvent & { sso_session?: string }
            const account = accountFrom(rest, event.username)
            await sync.applyAccount('event', account, origin, changed ?? null)
            await db.recordEvent(meta.id, [event.username], meta.timestamp)
            return
          }
          case 'rename_account': {
            await sync.rename('event', event.user_id ?? null, event.old_username, event.username, origin)
            // An update_account sent before the rename, under either name, is now stale.
            await db.recordEvent(meta.id, [event.old_username, event.username], meta.timestamp)
            return
          }
          case 'delete_account': {
            await sync.remove('event', event.user_id ?? null, event.username, origin)
            await db.recordEvent(meta.id, [event.username], meta.timestamp)
            return
          }
          default: {
            const ssoSession = event.sso_session ?? null
            // Only sessions the gateway vouched for at or before the event's `issued_at`: a delayed
            // sign-out never ends a sign-in made after it (no `issued_at`: a django-sso gateway, all end).
            const issuedAt = event.issued_at
            const ended = await (ssoSession === null ? db.store.destroyByUser(event.username, issuedAt) : db.store.destroyBySsoSession(ssoSession, issuedAt))
            const reason = event.reason ?? null
            log.info({ audit: 'deauthenticate', user: event.username, sessionsEnded: ended, ssoSession: ssoSession !== null, reason }, 'sessions ended by the gateway')
            if (options.onDeauthenticate !== undefined) {
              await options.onDeauthenticate(event.username, { ssoSession, sessionsEnded: ended, reason, userId: event.user_id ?? null, request, log })
            }
            await db.recordEvent(meta.id)
          }
        }
      })
      return { ok: true }
    })
  }
}
