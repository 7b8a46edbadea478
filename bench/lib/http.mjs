// HTTP for the load side: one undici Pool per origin, and virtual browsers (cookie jars,
// redirects followed by hand so every hop is visible).
import { Pool } from 'undici'

const pools = new Map()

/** A keep-alive pool for an origin (created once, sized for the biggest load). */
export function pool (origin, connections = 64) {
  let p = pools.get(origin)
  if (p === undefined) {
    p = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 30_000, bodyTimeout: 30_000 })
    pools.set(origin, p)
  }
  return p
}

export async function closePools () {
  const all = [...pools.values()]
  pools.clear()
  await Promise.all(all.map((p) => p.close().catch(() => {})))
}

/** One request; resolves with status, headers and the body as text. */
export async function http (url, { method = 'GET', headers = {}, body, expect, timeoutMs = 30_000 } = {}) {
  const u = new URL(url)
  const res = await pool(u.origin).request({
    method,
    path: u.pathname + u.search,
    headers,
    body,
    signal: AbortSignal.timeout(timeoutMs),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs
  })
  const text = await res.body.text()
  if (expect !== undefined && res.statusCode !== expect) {
    throw new Error(`${method} ${u.pathname}: expected ${expect}, got ${res.statusCode}: ${text.slice(0, 200)}`)
  }
  return { status: res.statusCode, headers: res.headers, text }
}

export const form = (fields) => new URLSearchParams(fields).toString()
export const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** A browser: a cookie jar per origin (our apps use distinct cookie names anyway). */
export class Browser {
  constructor () {
    this.jar = new Map()
  }

  cookieHeader (origin) {
    const c = this.jar.get(origin)
    if (c === undefined || c.size === 0) return undefined
    return [...c].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  store (origin, setCookie) {
    if (setCookie === undefined) return
    let c = this.jar.get(origin)
    if (c === undefined) this.jar.set(origin, (c = new Map()))
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const gone = value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()))
      if (gone) c.delete(name)
      else c.set(name, value)
    }
  }

  forget (origin) {
    this.jar.delete(origin)
  }

  /** A request with this browser's cookies; no redirect followed. */
  async request (url, { method = 'GET', headers = {}, body, expect } = {}) {
    const u = new URL(url)
    const cookie = this.cookieHeader(u.origin)
    const res = await http(url, { method, headers: cookie === undefined ? headers : { ...headers, cookie }, body, expect })
    this.store(u.origin, res.headers['set-cookie'])
    return res
  }

  /** Follows a redirect's Location against the current URL. */
  static next (res, from) {
    const loc = res.headers.location
    if (loc === undefined) throw new Error(`no redirect from ${from} (status ${res.status}): ${res.text.slice(0, 200)}`)
    return new URL(loc, from).href
  }
}

export const csrfOf = (html) => {
  const m = /name="_csrf" value="([^"]+)"/.exec(html)
  if (m === null) throw new Error('no CSRF token in the page')
  return m[1].replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&')
}
