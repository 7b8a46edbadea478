/**
 * Text safe for a log line. pino's JSON already escapes control characters; NEL (U+0085) and
 * the line and paragraph separators (U+2028, U+2029) are valid raw in JSON, and some log
 * viewers break lines there, so they are written as `\u0085`, `\u2028`, `\u2029`.
 */
export function logText (value: string): string {
  return value.replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function logValue (value: unknown): unknown {
  return typeof value === 'string' ? logText(value) : value
}

/**
 * pino serializers for the fields that carry usernames in our log records (`user`,
 * `oldUsername`): pass them as a child logger's or a plugin's `logSerializers`.
 */
export const USERNAME_LOG_SERIALIZERS = Object.freeze({ user: logValue, oldUsername: logValue })
