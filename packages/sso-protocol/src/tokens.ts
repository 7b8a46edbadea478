import { createHash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto'

/** Bytes of entropy in every token and secret this package makes: 256 bits. */
export const TOKEN_BYTES = 32

/**
 * A fresh random token: 256 bits, base64url, 43 characters.
 * Used for authentication request tokens, service secrets and session ids.
 */
export function generateToken (bytes: number = TOKEN_BYTES): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(bytes)).toString('base64url')
  if (poolOffset + bytes > POOL_BYTES) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const token = pool.toString('base64url', poolOffset, poolOffset + bytes)
  // Each byte is handed out once: zeroed as it leaves the pool.
  pool.fill(0, poolOffset, poolOffset + bytes)
  poolOffset += bytes
  return token
}

/**
 * Randomness in batches: one call to the CSPRNG per 4 KiB instead of one per token (a
 * `randomBytes` call costs about 5 µs, a slice of the pool a fraction of that). The bytes are
 * the same CSPRNG's; each is used for one token only.
 */
const POOL_BYTES = 4096
const pool = Buffer.alloc(POOL_BYTES)
let poolOffset = POOL_BYTES

/**
 * The value stored in place of a token: its SHA-256, base64url.
 * Tokens carry 256 random bits, so a fast hash is enough (no salt, no stretching):
 * a database leak does not reveal usable tokens, and a lookup stays an index hit.
 */
export function hashToken (token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url')
}

/**
 * Compares two strings in constant time. Both sides are hashed first so that
 * neither the content nor the length of the expected value leaks through timing.
 */
export function safeEqual (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest()
  const hb = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(ha, hb)
}

/** Prefix of a Standard Webhooks signing secret. */
export const SIGNING_SECRET_PREFIX = 'whsec_'

/** A fresh Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateSigningSecret (): string {
  return SIGNING_SECRET_PREFIX + randomBytes(TOKEN_BYTES).toString('base64')
}

/**
 * Whether `value` looks like a signing secret this package can use:
 * `whsec_` followed by base64 of at least 24 bytes.
 */
export function isSigningSecret (value: unknown): value is string {
  if (typeof value !== 'string' || !value.startsWith(SIGNING_SECRET_PREFIX)) return false
  const body = value.slice(SIGNING_SECRET_PREFIX.length)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return false
  return Buffer.from(body, 'base64').length >= 24
}
