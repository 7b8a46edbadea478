import { createHmac, timingSafeEqual } from 'node:crypto'
import { SIGNING_SECRET_PREFIX } from './tokens.js'

/** Header names of the Standard Webhooks scheme. */
export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature'
} as const

/** How far a signed event's timestamp may be from the receiver's clock, in seconds. @default 300 */
export const DEFAULT_TIMESTAMP_TOLERANCE = 300

function secretKey (secret: string): Buffer {
  const body = secret.startsWith(SIGNING_SECRET_PREFIX) ? secret.slice(SIGNING_SECRET_PREFIX.length) : secret
  return Buffer.from(body, 'base64')
}

function sign (key: Buffer, id: string, timestamp: number, body: string | Buffer): Buffer {
  return createHmac('sha256', key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest()
}

/**
 * Signs an event body the Standard Webhooks way and returns the three headers
 * to send with it. The body must be sent byte for byte as signed.
 */
export function signWebhook (secret: string | readonly string[], id: string, timestamp: number, body: string): Record<string, string> {
  // More than one secret during a rotation: one signature each, space-separated (the receiver accepts any).
  const secrets = typeof secret === 'string' ? [secret] : secret
  return {
    [WEBHOOK_HEADERS.id]: id,
    [WEBHOOK_HEADERS.timestamp]: String(timestamp),
    [WEBHOOK_HEADERS.signature]: secrets.map((s) => 'v1,' + sign(secretKey(s), id, timestamp, body).toString('base64')).join(' ')
  }
}

/** Why a signed event was refused. */
export type WebhookFailure = 'missing-headers' | 'bad-timestamp' | 'stale-timestamp' | 'bad-signature'

export type WebhookVerification =
  | { ok: true, id: string, timestamp: number }
  | { ok: false, reason: WebhookFailure }

export interface VerifyWebhookOptions {
  /** Accepted secrets: more than one during a rotation. */
  secrets: readonly string[]
  /** Request headers (lower-case names, as Node gives them). */
  headers: Record<string, string | string[] | undefined>
  /** The raw request body, exactly as received. */
  body: string | Buffer
  /** Allowed clock difference in seconds. @default 300 */
  toleranceSeconds?: number
  /** The receiver's clock in seconds, for tests. @default Math.floor(Date.now() / 1000) */
  now?: number
}

function header (headers: VerifyWebhookOptions['headers'], name: string): string | undefined {
  const value = headers[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * Verifies a Standard Webhooks signature over the raw body with any of the
 * given secrets, and that the timestamp is within the tolerance (both ways).
 */
export function verifyWebhook (options: VerifyWebhookOptions): WebhookVerification {
  const id = header(options.headers, WEBHOOK_HEADERS.id)
  const ts = header(options.headers, WEBHOOK_HEADERS.timestamp)
  const signatures = header(options.headers, WEBHOOK_HEADERS.signature)
  if (id === undefined || ts === undefined || signatures === undefined || id.length === 0 || id.length > 256) {
    return { ok: false, reason: 'missing-headers' }
  }
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'bad-timestamp' }
  const timestamp = Number(ts)
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const tolerance = options.toleranceSeconds ?? DEFAULT_TIMESTAMP_TOLERANCE
  if (Math.abs(now - timestamp) > tolerance) return { ok: false, reason: 'stale-timestamp' }
  // Compared as text, like the reference libraries: Node's base64 decoder
  // ignores junk and accepts base64url, so comparing decoded bytes would accept
  // many spellings of one signature.
  const offered = signatures.split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'utf8'))
  for (const secret of options.secrets) {
    const key = secretKey(secret)
    if (key.length === 0) continue // an empty key would let anyone sign
    const expected = Buffer.from(sign(key, id, timestamp, options.body).toString('base64'), 'utf8')
    for (const candidate of offered) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
        return { ok: true, id, timestamp }
      }
    }
  }
  return { ok: false, reason: 'bad-signature' }
}
