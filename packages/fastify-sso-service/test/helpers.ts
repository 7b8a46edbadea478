import type { Test } from 'tap'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions, InjectOptions, LightMyRequestResponse } from 'fastify'
import { generateSigningSecret, signWebhook } from 'fastify-sso-protocol'
import { MockAgent } from 'undici'
import type { MockPool } from 'undici'
import { Writable } from 'node:stream'
import fastifySsoService from '../src/index.js'
import type { FastifySsoServiceOptions } from '../src/index.js'

export const GATEWAY = 'http://gateway.test'
export const SERVICE_TOKEN = 'service-token-0123456789abcdefghijklmnopqrstu'
export const SIGNING_SECRET = generateSigningSecret()
export const SESSION_SECRET = 'a-session-secret-that-is-long-enough-0123456789'

export interface TestApp {
  app: FastifyInstance
  agent: MockAgent
  gateway: MockPool
  /** Every log line the app wrote, parsed. */
  logs: Array<Record<string, unknown>>
}

/** Builds an app with the plugin, a MockAgent standing in for the gateway, and captured logs. */
export async function buildApp (t: Test, overrides: Partial<FastifySsoServiceOptions> = {}, setup?: (app: FastifyInstance) => void | Promise<void>, server: FastifyServerOptions = {}): Promise<TestApp> {
  const agent = new MockAgent()
  agent.disableNetConnect()
  const logs: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  const app = Fastify({ ...server, logger: { level: 'info', stream } })
  await setup?.(app)
  await app.register(fastifySsoService, {
    gatewayUrl: GATEWAY,
    token: SERVICE_TOKEN,
    signingSecret: SIGNING_SECRET,
    sessionSecret: SESSION_SECRET,
    cookieSecure: false,
    database: ':memory:',
    dispatcher: agent,
    ...overrides
  })
  t.teardown(async () => {
    await app.close()
    await agent.close()
  })
  return { app, agent, gateway: agent.get(GATEWAY), logs }
}

/** A cookie-keeping client for multi-step flows, like a browser. */
export class Browser {
  readonly cookies = new Map<string, string>()
  constructor (readonly app: FastifyInstance, readonly accept = 'text/html,application/xhtml+xml') {}

  async request (options: InjectOptions | string): Promise<LightMyRequestResponse> {
    const opts: InjectOptions = typeof options === 'string' ? { url: options } : { ...options }
    const headers: Record<string, string> = { accept: this.accept, ...(opts.headers as Record<string, string> | undefined) }
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    opts.headers = headers
    const res = await this.app.inject(opts)
    for (const c of res.cookies as Array<{ name: string, value: string, expires?: Date }>) {
      if (c.expires !== undefined && c.expires.getTime() <= Date.now()) this.cookies.delete(c.name)
      else this.cookies.set(c.name, c.value)
    }
    return res
  }
}

/** Mocks a successful sign-in at the gateway: obtain, get and make_used. */
export function mockSignIn (gateway: MockPool, opts: { token?: string, username?: string, next?: string, user?: Record<string, unknown> | null, ssoSession?: string | null, ssoSessionEndsAt?: number, authTime?: number, issuedAt?: number } = {}): void {
  const token = opts.token ?? 'request-token-1'
  const username = opts.username ?? 'alice'
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token })
  const got: Record<string, unknown> = { authenticated: true, user_identy: username, next_url: opts.next ?? '/' }
  if (opts.user !== null) got.user = opts.user ?? { username, is_active: true, is_staff: false, is_superuser: false, email: `${username}@example.com`, display_name: 'Alice A.', team: 'blue' }
  if (opts.ssoSession !== null) got.sso_session = opts.ssoSession ?? 'sso-session-1'
  if (opts.ssoSessionEndsAt !== undefined) got.sso_session_ends_at = opts.ssoSessionEndsAt
  if (opts.authTime !== undefined) got.auth_time = opts.authTime
  if (opts.issuedAt !== undefined) got.issued_at = opts.issuedAt
  gateway.intercept({ path: '/sso/get/', method: 'POST' }).reply(200, got)
  gateway.intercept({ path: '/sso/make_used/', method: 'POST' }).reply(200, { ok: true })
}

/** Walks the browser through /login/ and /sso/accept/ with a mocked gateway; returns the final response. */
export async function signIn (browser: Browser, gateway: MockPool, opts: Parameters<typeof mockSignIn>[1] = {}): Promise<LightMyRequestResponse> {
  mockSignIn(gateway, opts)
  const next = opts.next ?? '/'
  const login = await browser.request(`/login/?next=${encodeURIComponent(next)}`)
  if (login.statusCode !== 302) throw new Error(`login answered ${login.statusCode}`)
  return await browser.request('/sso/accept/')
}

/** Sends a signed event like a fastify-sso gateway does. */
export async function sendEvent (app: FastifyInstance, event: Record<string, unknown>, opts: { id?: string, timestamp?: number, secret?: string, headers?: Record<string, string> } = {}): Promise<LightMyRequestResponse> {
  const body = JSON.stringify(event)
  const id = opts.id ?? `msg_${Math.random().toString(36).slice(2)}`
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000)
  return await app.inject({
    method: 'POST',
    url: '/sso/event/',
    headers: { 'content-type': 'application/json', ...signWebhook(opts.secret ?? SIGNING_SECRET, id, timestamp, body), ...opts.headers },
    payload: body
  })
}

/** Audit records with this name. */
export function audits (logs: TestApp['logs'], name: string): Array<Record<string, unknown>> {
  return logs.filter((l) => l.audit === name)
}

/** The CSRF token of a page's forms. */
export function csrfOf (html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html)
  if (m === null) throw new Error('no CSRF field on the page')
  return m[1] as string
}
