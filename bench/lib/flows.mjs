// What a virtual browser or a service does, step by step (shared by the bench's main thread and
// its load worker threads). Every step checks the answer a real client would check.
import { Browser, csrfOf, form, FORM, http } from './http.mjs'

/** A password sign-in at the gateway alone (no service). */
export async function gatewayLogin (G, browser, username, password) {
  const page = await browser.request(`${G}/login/`, { expect: 200 })
  await browser.request(`${G}/login/`, { method: 'POST', headers: FORM, body: form({ _csrf: csrfOf(page.text), username, password }), expect: 303 })
}

/** The whole sign-in into the service at `url` through the gateway, with a password (fresh browser). */
export async function fullLogin (browser, url, username, password) {
  const r1 = await browser.request(`${url}/login/?next=/private`, { expect: 302 })
  const gw = Browser.next(r1, url)
  const page = await browser.request(gw, { expect: 200 })
  const r3 = await browser.request(gw, { method: 'POST', headers: FORM, body: form({ _csrf: csrfOf(page.text), username, password }), expect: 303 })
  const accept = Browser.next(r3, gw)
  const r4 = await browser.request(accept, { expect: 302 })
  if (r4.headers.location !== '/private') throw new Error(`accept sent the browser to ${r4.headers.location}`)
}

/** Silent SSO hop into the service at `url` for a browser signed in at the gateway. */
export async function hop (browser, url) {
  browser.forget(url)
  const r1 = await browser.request(`${url}/login/?next=/private`, { expect: 302 })
  const gw = Browser.next(r1, url)
  const r2 = await browser.request(gw, { expect: 302 })
  const accept = Browser.next(r2, gw)
  const r3 = await browser.request(accept, { expect: 302 })
  if (r3.headers.location !== '/private') throw new Error(`accept sent the browser to ${r3.headers.location}: ${r3.text.slice(0, 200)}`)
}

export async function pmap (items, concurrency, fn) {
  let next = 0
  const out = new Array(items.length)
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async (_, worker) => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i, worker)
    }
  }))
  return out
}

/**
 * The flows a load worker runs: each answers { op(w, i), maxOps? } after its set-up (sign-ins,
 * warm-up), for `concurrency` loops of worker number `index` of `workers`.
 */
export const flows = {
  /** One fixed request (the fallback for wrk). */
  async request ({ url, method = 'GET', headers = {}, body, expect = 200 }) {
    const op = async () => { await http(url, { method, headers, body, expect }) }
    for (let i = 0; i < 200; i++) await op() // warm-up
    return { op }
  },
  /** get + make_used on this worker's share of the prepared tokens (the fallback for wrk). */
  async pairs ({ G, bodies }, { index, workers }) {
    const mine = bodies.filter((_, i) => i % workers === index)
    return {
      maxOps: mine.length,
      op: async (_w, i) => {
        const got = await http(`${G}/sso/get/`, { method: 'POST', headers: FORM, body: mine[i], expect: 200 })
        if (!got.text.includes('"authenticated":true')) throw new Error('get: not authenticated')
        await http(`${G}/sso/make_used/`, { method: 'POST', headers: FORM, body: mine[i], expect: 200 })
      }
    }
  },
  /** Silent hops: one browser per loop, signed in at the gateway (its own user), one warm-up hop each. */
  async hop ({ G, url, users, password }, { index, concurrency }) {
    const browsers = Array.from({ length: concurrency }, () => new Browser())
    await pmap(browsers, 8, async (b, i) => gatewayLogin(G, b, users[index * concurrency + i], password))
    await pmap(browsers, 8, async (b) => hop(b, url))
    return { op: async (w) => hop(browsers[w], url) }
  },
  /** Password sign-ins into a service, a fresh browser each. */
  async login ({ url, users, password }, { index }) {
    let n = index
    await fullLogin(new Browser(), url, users[0], password) // warm-up
    return { op: async () => fullLogin(new Browser(), url, users[n++ % users.length], password) }
  }
}
