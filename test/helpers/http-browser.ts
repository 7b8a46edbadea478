import { request, type Dispatcher } from 'undici'

export interface Page {
  status: number
  url: string
  headers: Record<string, string | string[] | undefined>
  body: string
  /** Every URL visited, redirects included. */
  chain: string[]
}

/**
 * An HTTP client that behaves like a browser for our purposes: a cookie jar per host
 * name (cookies are not isolated by port, as in browsers), redirects followed by hand,
 * forms posted url-encoded. Host names are resolved to 127.0.0.1.
 */
export class HttpBrowser {
  readonly jar = new Map<string, Map<string, string>>()

  /** @param dispatcher e.g. an undici Agent bound to another loopback source address (127.0.0.2). */
  constructor (readonly dispatcher?: Dispatcher) {}

  cookieHeader (url: URL): string {
    return [...(this.jar.get(url.hostname) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  #store (url: URL, setCookie: string | string[] | undefined): void {
    const list = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]
    const jar = this.jar.get(url.hostname) ?? new Map<string, string>()
    this.jar.set(url.hostname, jar)
    for (const line of list) {
      const [pair, ...attrs] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      const name = (pair ?? '').slice(0, eq).trim()
      const value = (pair ?? '').slice(eq + 1).trim()
      const expired = attrs.some((a) => {
        const [k, v] = a.trim().split('=')
        return (k?.toLowerCase() === 'expires' && Date.parse(v ?? '') < Date.now()) || (k?.toLowerCase() === 'max-age' && Number(v) <= 0)
      })
      if (expired || value === '') jar.delete(name)
      else jar.set(name, value)
    }
  }

  /** One request, no redirect following. */
  async send (method: 'GET' | 'POST', target: string, form?: Record<string, string>): Promise<Page> {
    const url = new URL(target)
    const res = await request(`http://127.0.0.1:${url.port}${url.pathname}${url.search}`, {
      method,
      headers: {
        host: url.host,
        accept: 'text/html,application/xhtml+xml',
        cookie: this.cookieHeader(url),
        ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin })
      },
      body: form === undefined ? null : new URLSearchParams(form).toString(),
      ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }),
      headersTimeout: 15_000,
      bodyTimeout: 15_000
    })
    this.#store(url, res.headers['set-cookie'])
    return { status: res.statusCode, url: url.href, headers: res.headers, body: await res.body.text(), chain: [url.href] }
  }

  /**
   * A request, then every redirect (GET) until a page that is not a redirect. A page that
   * redirects with an immediate `<meta http-equiv="refresh">` (as django-sso's /login/ does) is
   * followed too, as a browser would.
   */
  async go (method: 'GET' | 'POST', target: string, form?: Record<string, string>): Promise<Page> {
    let page = await this.send(method, target, form)
    const chain = [page.url]
    for (let hops = 0; hops < 10; hops++) {
      const refresh = page.status === 200 ? /<meta http-equiv="refresh" content="0; url='([^']+)'">/.exec(page.body)?.[1] : undefined
      if (refresh === undefined && (page.status < 300 || page.status >= 400)) break
      const next = new URL(refresh === undefined ? String(page.headers.location) : refresh.replace(/&#38;/g, '&'), page.url).href
      page = await this.send('GET', next)
      chain.push(page.url)
    }
    return { ...page, chain }
  }

  static csrf (html: string): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(html)
    if (m === null) throw new Error(`no CSRF field in: ${html.slice(0, 300)}`)
    return m[1] as string
  }
}
