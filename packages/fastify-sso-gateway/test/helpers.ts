import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import { MockAgent } from 'undici'
import fastifySsoGateway, { SqliteGatewayStore, type FastifySsoGatewayOptions } from '../src/index.js'

export const SESSION_SECRET = 'a-test-session-secret-of-at-least-32-characters'
export const PASSWORD = 'correct horse battery staple'

const stores = new WeakMap<FastifyInstance, SqliteGatewayStore>()

/** The SQLite store of an app made by `buildApp` (to look at or break its database). */
export function storeOf (app: FastifyInstance): SqliteGatewayStore {
  const store = stores.get(app)
  if (store === undefined) throw new Error('no SQLite store for this app')
  return store
}

/** Cheapest argon2id settings the gateway accepts (OWASP minimum), to keep tests quick. */
export async function buildApp (options: Partial<FastifySsoGatewayOptions> = {}, server: FastifyServerOptions = {}): Promise<{ app: FastifyInstance, agent: MockAgent }> {
  const agent = new MockAgent()
  agent.disableNetConnect()
  const app = Fastify({ logger: false, ...server })
  // An in-memory SQLite store the test can reach (`storeOf`), unless the test brings its own or a file.
  const store = options.store ?? (options.database === undefined ? new SqliteGatewayStore({ filename: ':memory:' }) : undefined)
  if (store instanceof SqliteGatewayStore) stores.set(app, store)
  await app.register(fastifySsoGateway, {
    sessionSecret: SESSION_SECRET,
    ...(store === undefined ? {} : { store }),
    cookieSecure: false,
    dispatcher: agent,
    inlineEventTimeout: 200,
    ...options
  })
  await app.ready()
  return { app, agent }
}

/** Registers service "alpha" at http://alpha.test and user alice; answers alpha's events with 200. */
export async function seed (app: FastifyInstance, agent: MockAgent): Promise<{ secret: string, signingSecret: string }> {
  const { secret, signingSecret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD, email: 'alice@example.test' })
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true }).persist()
  return { secret, signingSecret }
}

/** A browser-like client over `inject` that keeps cookies between requests. */
/**
 * The one-time code the gateway put in each browser's redirect to `/sso/accept/`, by request
 * token: what a service's accept route would read from its URL. `call()` adds it for the token.
 */
export const codes = new Map<string, string>()

export class Browser {
  readonly cookies = new Map<string, string>()
  constructor (readonly app: FastifyInstance, readonly headers: Record<string, string> = {}) {}

  async request (method: 'GET' | 'POST', url: string, form?: Record<string, string>): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method,
      url,
      headers: {
        cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        accept: 'text/html',
        ...this.headers,
        ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' })
      },
      ...(form === undefined ? {} : { payload: new URLSearchParams(form).toString() })
    })
    for (const c of res.cookies) {
      if (c.expires !== undefined && c.expires.getTime() < Date.now()) this.cookies.delete(c.name)
      else this.cookies.set(c.name, c.value)
    }
    const sso = /[?&]sso=([^&]+)/.exec(url)?.[1]
    const code = /\/sso\/accept\/\?code=([^&]+)/.exec(String(res.headers.location ?? ''))?.[1]
    if (sso !== undefined && code !== undefined) codes.set(decodeURIComponent(sso), code)
    return res
  }

  /** The CSRF token of the form on a page. */
  static csrf (html: string): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(html)
    if (m === null) throw new Error('no CSRF field on the page')
    return m[1] as string
  }
}

/** Calls a protocol endpoint the way a service does (form-encoded, token field). */
export async function call (app: FastifyInstance, path: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  // Like a service's accept route: the browser's code goes with the token (unless the test sets one).
  const code = fields.authentication_token === undefined ? undefined : codes.get(fields.authentication_token)
  if (code !== undefined && !('code' in fields) && /\/sso\/(get|make_used)/.test(path)) fields = { ...fields, code }
  return await app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString()
  })
}

/** Obtains a request token, signs alice in through the form, and returns the token. */
export async function signIn (app: FastifyInstance, browser: Browser, secret: string, nextUrl = '/next'): Promise<string> {
  const obtained = await call(app, '/sso/obtain/', { token: secret, next_url: nextUrl })
  const token = (obtained.json() as { token: string }).token
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const res = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`)
  return token
}

/** Answers a service's events with 200 and records their JSON bodies. */
export function record (agent: MockAgent, origin: string): Array<Record<string, unknown>> {
  const received: Array<Record<string, unknown>> = []
  agent.get(origin).intercept({ path: '/sso/event/', method: 'POST' })
    .reply(200, (opts) => { received.push(JSON.parse(String(opts.body)) as Record<string, unknown>); return { ok: true } }).persist()
  return received
}

/** Obtains a request token for a service (extra fields such as `prompt` allowed). */
export async function obtain (app: FastifyInstance, secret: string, extra: Record<string, string> = {}): Promise<string> {
  const res = await call(app, '/sso/obtain/', { token: secret, next_url: '/next', ...extra })
  if (res.statusCode !== 200) throw new Error(`obtain failed: ${res.statusCode} ${res.body}`)
  return (res.json() as { token: string }).token
}

/** Signs `username` in through the form for a fresh request of the service; returns the POST's answer and the token. */
export async function signInAs (app: FastifyInstance, browser: Browser, secret: string, username: string, password = PASSWORD, extra: Record<string, string> = {}): Promise<{ res: LightMyRequestResponse, token: string }> {
  const token = await obtain(app, secret, extra)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const res = await browser.request('POST', `/login/?sso=${token}`, { username, password, _csrf: Browser.csrf(form.body) })
  return { res, token }
}

/** The SSO session id of the browser's gateway session (what /sso/get/ reports). */
export async function ssoOf (app: FastifyInstance, secret: string, token: string): Promise<string> {
  const res = await call(app, '/sso/get/', { token: secret, authentication_token: token })
  return (res.json() as { sso_session: string }).sso_session
}

/** A Fastify logger writing JSON lines into an array (for audit assertions). */
export function logLines (): { lines: Array<Record<string, unknown>>, server: FastifyServerOptions } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, server: { logger: { level: 'info', stream: { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>) } } } } }
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

