/**
 * Option checks both plugins share: unknown keys refused with the nearest known name, and
 * option values shown in errors without ever showing a secret.
 */

/** What Fastify itself reads from the options of `register` (not the plugin's own options). */
export const FASTIFY_REGISTER_KEYS: readonly string[] = Object.freeze(['prefix', 'logLevel', 'logSerializers'])

function distance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = row
  }
  return previous[b.length] as number
}

/**
 * The known name nearest to `name` (ignoring case), if it is close enough to be a likely
 * misspelling (at most a third of its letters differ, and never more than 3), else null.
 */
export function nearestName (name: string, known: readonly string[]): string | null {
  let best: string | null = null
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= Math.min(3, Math.max(1, Math.floor(name.length / 3))) ? best : null
}

/**
 * The first own key of `options` that is neither in `known` nor in `alsoAllowed` (for the
 * top level: Fastify's register keys), with the reason to show:
 * `is not an option; did you mean "idleTimeout"?`.
 */
export function unknownOption (options: object, known: readonly string[], alsoAllowed: readonly string[] = []): { name: string, detail: string } | null {
  for (const name of Object.keys(options)) {
    if (known.includes(name) || alsoAllowed.includes(name)) continue
    const near = nearestName(name, known)
    return { name, detail: near === null ? `is not an option (known options: ${known.join(', ')})` : `is not an option; did you mean "${near}"?` }
  }
  return null
}

/**
 * How an option value is shown in an error. A secret is never shown, whatever its type
 * (string, array, Buffer, object): only its kind (`<redacted string of 9 characters>`).
 */
export function showOption (value: unknown, secret: boolean): string {
  if (secret && value !== undefined && value !== null) {
    if (typeof value === 'string') return `<redacted string of ${value.length} characters>`
    if (Array.isArray(value)) return `<redacted array of ${value.length}>`
    return `<redacted ${typeof value === 'object' ? (Object.getPrototypeOf(value)?.constructor?.name ?? 'object') : typeof value}>`
  }
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return String(value)
  try {
    const json = JSON.stringify(value)
    return json === undefined ? String(value) : json.length > 200 ? json.slice(0, 200) + '...' : json
  } catch {
    return String(value)
  }
}
