// The dispatcher under test with a MockAgent, a clock the test moves and a recording logger.
import type { FastifyBaseLogger } from 'fastify'
import { generateSigningSecret } from 'fastify-sso-protocol'
import { MockAgent } from 'undici'
import { OutboxDispatcher } from '../src/outbox/dispatcher.js'
import { SqliteGatewayStore } from '../src/store/sqlite.js'
import type { NewOutboxEvent, UserRecord } from '../src/store/store.js'

export const ORIGIN = 'http://svc.test'

export function logger (): FastifyBaseLogger & { lines: Array<[string, unknown, string]> } {
  const lines: Array<[string, unknown, string]> = []
  const at = (level: string) => (obj: unknown, msg: string) => { lines.push([level, obj, msg]) }
  const log = { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), trace: at('trace'), fatal: at('fatal'), level: 'info', silent: () => {} }
  return Object.assign(log, { child: () => log }) as never
}

export async function setup (t: { teardown: (fn: () => Promise<void>) => void }, store = new SqliteGatewayStore({ filename: ':memory:' }), retrySchedule?: number[], extra: { probeInterval?: number } = {}) {
  const agent = new MockAgent()
  agent.disableNetConnect()
  const clock = { offset: 0, get now () { return Date.now() + this.offset } }
  const log = logger()
  const dispatcher = new OutboxDispatcher({ store, log, timeout: 1000, interval: 60_000, dispatcher: agent, now: () => clock.now, retrySchedule, ...extra })
  const service = await store.services.create({
    id: 'svc_1', name: 'svc', baseUrl: ORIGIN, eventUrl: `${ORIGIN}/sso/event/`, tokenHash: 'h1',
    signingSecret: generateSigningSecret(), djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
  })
  t.teardown(async () => { await dispatcher.close(100); await store.close() })
  const user = (id: string): UserRecord => ({
    id, username: id, passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {}, createdAt: 0, updatedAt: 0
  })
  const run = async () => { dispatcher.kick(); await dispatcher.idle() }
  const pool = agent.get(ORIGIN)
  const event = async (e: NewOutboxEvent) => { await store.outbox.enqueue([e]); return e }
  return { store, agent, pool, clock, log, dispatcher, service, user, run, event }
}

export const get = async (store: SqliteGatewayStore, id: string) =>
  [...await store.outbox.list('pending', 100), ...await store.outbox.list('dead', 100), ...await store.outbox.list('delivered', 100)].find((e) => e.id === id)!
