/** Longest next_url accepted, in characters. */
export const MAX_NEXT_URL_LENGTH = 2048

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/
const CONTROL = /[\x00-\x1f\x7f]/
const PROBE_ORIGIN = 'http://next-url.invalid'

/**
 * Checks that `value` is a relative path on the same site, safe to put in a
 * `Location` header, and returns it unchanged; returns `null` for anything else.
 *
 * Refused, because browsers or servers have been tricked by each:
 * absolute and scheme URLs (`https://x`, `javascript:`, `data:`), scheme-relative
 * `//host`, backslashes (`/\host`, browsers read `\` as `/`), whitespace, control
 * and non-ASCII characters (tab/newline stripping, full-width `／`, header
 * injection), userinfo tricks, and percent-encoded forms of the same
 * (`/%2F%2Fhost`, `/%5Chost`, `%0d%0a`), decoded up to three times.
 */
export function checkNextUrl (value: unknown): string | null {
  if (typeof value !== 'string') return null
  if (value.length === 0 || value.length > MAX_NEXT_URL_LENGTH) return null
  if (!PRINTABLE_ASCII.test(value)) return null
  if (value[0] !== '/' || value.includes('\\')) return null
  let decoded = value
  for (let i = 0; i < 3; i++) {
    if (/^\/[/\\]/.test(decoded) || CONTROL.test(decoded)) return null
    let next: string
    try {
      next = decodeURIComponent(decoded)
    } catch {
      return null
    }
    if (next === decoded) break
    decoded = next
  }
  if (/^\/[/\\]/.test(decoded) || CONTROL.test(decoded) || decoded.includes('\\')) return null
  let parsed: URL
  try {
    parsed = new URL(value, PROBE_ORIGIN)
  } catch /* c8 ignore next 2: every string that passed the checks above parses against a base */ {
    return null
  }
  if (parsed.origin !== PROBE_ORIGIN || parsed.pathname.startsWith('//')) return null
  return value
}
