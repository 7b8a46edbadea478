/** Longest next_url accepted, in characters. */
export const MAX_NEXT_URL_LENGTH = 2048

/** Percent-decoding rounds checked; a value still encoded after them is refused. */
const DECODE_ROUNDS = 4

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/
const PERCENT_BYTE = /%([0-9a-fA-F]{2})/g
const PROBE_ORIGIN = 'http://next-url.invalid'

/**
 * Lenient percent-decoding, as a forgiving server or proxy does it: every valid
 * `%XX` becomes its byte, anything else (a lone `%`, `%zz`) stays as it is, and
 * the bytes are read as UTF-8 (invalid sequences become U+FFFD).
 */
function percentDecode (value: string): string {
  const parts: Buffer[] = []
  let last = 0
  for (const match of value.matchAll(PERCENT_BYTE)) {
    parts.push(Buffer.from(value.slice(last, match.index), 'utf8'), Buffer.from([parseInt(match[1] as string, 16)]))
    last = match.index + match[0].length
  }
  parts.push(Buffer.from(value.slice(last), 'utf8'))
  return Buffer.concat(parts).toString('utf8')
}

/**
 * Whether one reading of the value (raw, decoded, or NFKC-normalised) stays a
 * path on the same site: no control characters, no backslash, and, once dot
 * segments are resolved, no `//` at the start of the path (scheme-relative URL).
 */
function staysOnSite (form: string): boolean {
  if (CONTROL.test(form) || form.includes('\\') || form.startsWith('//')) return false
  let parsed: URL
  /* c8 ignore start: a string starting with one '/' and free of controls always parses against a base */
  try {
    parsed = new URL(form, PROBE_ORIGIN)
  } catch {
    return false
  }
  /* c8 ignore stop */
  return parsed.origin === PROBE_ORIGIN && !parsed.pathname.startsWith('//')
}

/**
 * Checks that `value` is a relative path on the same site, safe to put in a
 * `Location` header, and returns it unchanged; returns `null` for anything else.
 *
 * Refused, because browsers or servers have been tricked by each:
 * absolute and scheme URLs (`https://x`, `javascript:`, `data:`), scheme-relative
 * `//host` and `///host`, backslashes (`/\host`, browsers read `\` as `/`),
 * whitespace, control and non-ASCII characters (tab/newline stripping,
 * full-width `／`, header injection), dot segments that resolve to `//host`
 * (`/..//host`), and percent-encoded forms of all of these (`/%2F%2Fhost`,
 * `/%5Chost`, `%0d%0a`, `%EF%BC%8F`), decoded repeatedly and NFKC-normalised;
 * a value still encoded after four rounds of decoding is refused too.
 */
export function checkNextUrl (value: unknown): string | null {
  if (typeof value !== 'string') return null
  if (value.length === 0 || value.length > MAX_NEXT_URL_LENGTH) return null
  if (!PRINTABLE_ASCII.test(value) || value[0] !== '/') return null
  let form = value
  for (let round = 0; round <= DECODE_ROUNDS; round++) {
    if (!staysOnSite(form) || !staysOnSite(form.normalize('NFKC'))) return null
    const next = percentDecode(form)
    if (next === form) return value
    form = next
  }
  return null
}
