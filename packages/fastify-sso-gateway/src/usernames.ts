import { MAX_USERNAME_LENGTH } from 'fastify-sso-protocol'

const ALLOWED = /^[\p{L}\p{N}._@+-]+$/u

/**
 * The one canonical spelling of a username: Unicode NFKC (so full-width and
 * compatibility forms fold to their plain letters), then lower case. Every lookup
 * and every stored name goes through this, so two spellings never reach two
 * accounts, nor one another's. Returns null when the result is not 1 to 150
 * letters, digits or `. _ @ + -`.
 */
export function canonicalUsername (input: unknown): string | null {
  if (typeof input !== 'string' || input.length > MAX_USERNAME_LENGTH * 4) return null
  const name = input.normalize('NFKC').toLowerCase()
  if (name.length === 0 || name.length > MAX_USERNAME_LENGTH || !ALLOWED.test(name)) return null
  return name
}
