// Shared pieces of the fault tests: a stand-in service process, the gateway's SQLite file
// read from the test, and the sign-in steps done by hand.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import type { ServiceSeed } from '../../scripts/fleet.mjs'
import { HttpBrowser, type Page } from './http-browser.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export async function waitFor (what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export type StandInMode =
  | { mode: 'ok' } | { mode: 'hang' } | { mode: 'redirect' }
  | { mode: 'status', status: number, retryAfter?: number }
  | { mode: 'slow', delay: number }
  | { mode: 'proxy', target: string, delay?: number, hold?: boolean }

export interface Received { service: string, path: string, id: string | null, type: string | null, mode: string, at: number, answered?: number | string }

export interface StandIn {
  url: string
  proc: ChildProcess
  /** A service hosted by the stand-in, ready to register at the gateway. */
  seed: (name: string, protocol?: 'fastify-sso' | 'django-sso') => ServiceSeed
  setMode: (name: string, mode: StandInMode) => Promise<void>
  /** Lets the events a `hold` proxy is holding go on. */
  release: (name: string) => Promise<void>
  received: (name?: string) => Promise<Received[]>
  stop: () => Promise<void>
}

/** Starts test/fixtures/stand-in-service.mjs on a free port. */
export async function startStandIn (modes: Record<string, StandInMode> = {}): Promise<StandIn> {
  const proc = spawn(process.execPath, [`${ROOT}test/fixtures/stand-in-service.mjs`], {
    env: { ...process.env, MODES: JSON.stringify(modes) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\d+)/.exec(out)
      if (m !== null) resolve(Number(m[1]))
    })
    proc.once('exit', (code) => reject(new Error(`stand-in exited with ${code}`)))
    setTimeout(() => reject(new Error('stand-in did not start')), 10_000).unref()
  })
  const url = `http://127.0.0.1:${port}`
  const seeds = new Map<string, ServiceSeed>()
  return {
    url,
    proc,
    seed (name, protocol = 'fastify-sso') {
      const s: ServiceSeed = seeds.get(name) ?? {
        name,
        baseUrl: `${url}/${name}`,
        eventUrl: `${url}/${name}/sso/event/`,
        protocol,
        secret: randomBytes(32).toString('base64url'),
        signingSecret: 'whsec_' + randomBytes(32).toString('base64')
      }
      seeds.set(name, s)
      return s
    },
    async setMode (name, mode) {
      const res = await request(`${url}/_mode/${name}`, { method: 'PUT', body: JSON.stringify(mode) })
      await res.body.dump()
    },
    async release (name) {
      const res = await request(`${url}/_release/${name}`, { method: 'PUT' })
      await res.body.dump()
    },
    async received (name) {
      const res = await request(`${url}/_received`)
      const all = await res.body.json() as Received[]
      return name === undefined ? all : all.filter((r) => r.service === name && r.path.startsWith('/sso/event'))
    },
    async stop () {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      await new Promise((resolve) => { proc.once('exit', resolve); proc.kill('SIGTERM'); setTimeout(() => proc.kill('SIGKILL'), 3000).unref() })
    }
  }
}

/** A minimal view of better-sqlite3 (a dependency of the gateway package, not of the root). */
export interface Sqlite {
  prepare: (sql: string) => { all: (...args: unknown[]) => unknown[], get: (...args: unknown[]) => unknown, run: (...args: unknown[]) => unknown }
  exec: (sql: string) => void
  pragma: (sql: string) => unknown
  close: () => void
}
const requireFromGateway = createRequire(`${ROOT}packages/fastify-sso-gateway/package.json`)
export function openSqlite (file: string, options: { readonly?: boolean, timeout?: number } = {}): Sqlite {
  const Database = requireFromGateway('better-sqlite3') as new (file: string, o: object) => Sqlite
  return new Database(file, { timeout: 5000, ...options })
}

export interface OutboxRow { id: string, service: string, status: string, attempts: number, last_error: string | null, type: string }
/** The gateway's outbox as the test sees it in the SQLite file (read-only). */
export function outbox (file: string, service?: string): OutboxRow[] {
  const db = openSqlite(file, { readonly: true })
  try {
    return (db.prepare(`SELECT o.id, s.name AS service, o.status, o.attempts, o.last_error, json_extract(o.payload, '$.type') AS type
      FROM outbox o JOIN services s ON s.id = o.service_id ORDER BY o.seq`).all() as OutboxRow[])
      .filter((r) => service === undefined || r.service === service)
  } finally {
    db.close()
  }
}

/** `POST /sso/obtain/` as a service: a request token for the browser. */
export async function obtain (gateway: string, secret: string, next = '/'): Promise<string> {
  const res = await request(`${gateway}/sso/obtain/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: secret, next_url: next }).toString()
  })
  const body = await res.body.json() as { token?: string }
  if (res.statusCode !== 200 || body.token === undefined) throw new Error(`obtain: ${res.statusCode} ${JSON.stringify(body)}`)
  return body.token
}

/** Opens the gateway form for a request token and posts the password; the answer is not followed. */
export async function signInAtGateway (browser: HttpBrowser, gateway: string, token: string, password: string): Promise<{ page: Page, ms: number }> {
  const form = await browser.send('GET', `${gateway}/login/?sso=${encodeURIComponent(token)}`)
  if (form.status !== 200) throw new Error(`form: ${form.status} ${form.body.slice(0, 300)}`)
  const started = Date.now()
  const page = await browser.send('POST', form.url, { username: 'alice', password, _csrf: HttpBrowser.csrf(form.body) })
  return { page, ms: Date.now() - started }
}

/** Short retry schedule and timeouts so the fault tests run in seconds. */
export const FAST_GATEWAY_ENV = {
  RETRY_SCHEDULE: JSON.stringify([200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]),
  OUTBOX_INTERVAL: '100',
  EVENT_TIMEOUT: '1000',
  INLINE_EVENT_TIMEOUT: '1000'
}
