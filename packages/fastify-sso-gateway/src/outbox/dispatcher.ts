import { Agent, request, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import { signWebhook } from 'fastify-sso-protocol'
import { bodyFor, signingSecrets } from './events.js'
import type { GatewayStore, OutboxEvent, ServiceRecord } from '../store/store.js'

/**
 * Delay before retry number n (index = attempts made so far), in ms: immediately,
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h — about three days in all.
 * After the last one an event is dead-lettered.
 */
export const RETRY_SCHEDULE: readonly number[] = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000
]

const BATCH = 64
/** Free slots that make a run claim again while deliveries are still going. */
const REFILL = BATCH / 4
/** Delivery status is looked up and logged at most once per this long, in ms. */
const STATUS_LOG_MS = 60_000
/**
 * Answers that may only mean "not yet" during a deploy or a signing-secret rotation (the new
 * secret reaches the service a moment after the gateway): retried like a network error until
 * this many attempts were made, then final.
 */
export const AUTH_FAILURE_ATTEMPTS = 4
const NOT_YET = new Set([401, 403, 404])
/** Statuses that mean a proxy could not reach the service (like no answer at all). */
const UNREACHABLE = new Set([502, 503, 504])
/** A service that last failed as unreachable is probed this often while its events wait, in ms. */
export const PROBE_INTERVAL = 5_000
/** A service calling the gateway makes its waiting events due at most this often, in ms. */
const CONTACT_EXPEDITE_MS = 2_000

export interface OutboxDispatcherOptions {
  store: GatewayStore
  log: FastifyBaseLogger
  /** Total time for one delivery attempt, in ms. */
  timeout: number
  /** Poll interval, in ms. */
  interval: number
  /** Delays between attempts, in ms; after the last one an event is dead. @default RETRY_SCHEDULE */
  retrySchedule?: readonly number[] | undefined
  dispatcher?: Dispatcher | undefined
  now?: () => number
  /** How often unreachable services with waiting events are probed, in ms. @default PROBE_INTERVAL */
  probeInterval?: number
}

/** What one delivery attempt came to. */
type Outcome = { ok: true } | { ok: false, final: boolean, error: string, retryAfter?: number, status?: number }

/** Most of an answer body read to judge a delivery, in bytes (a peer's `{"ok": true}` or `{"error": ...}`). */
const MAX_ANSWER_BYTES = 16 * 1024

/**
 * Whether a 2xx answer body says the event was taken. django-sso answers every failure (a
 * wrong token, a key its acceptor does not take, an exception) with HTTP 200 and
 * `{"error": "..."}`, and success with `{"ok": true}`: only that counts. A fastify-sso service
 * answers `{"ok": true}` too; an empty 2xx body is accepted from it (a receiver that answers
 * 204), never from a django-sso one. Returns null when taken, else the reason.
 */
export function refusalIn (text: string, emptyIsOk: boolean): string | null {
  if (text.trim() === '') return emptyIsOk ? null : 'empty answer, expected {"ok": true}'
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return 'answer is not JSON, expected {"ok": true}'
  }
  if (typeof body === 'object' && body !== null && (body as { ok?: unknown }).ok === true) return null
  const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined
  return typeof error === 'string' ? `refused: ${error.slice(0, 300)}` : 'answer without "ok": true'
}

/** Reads at most MAX_ANSWER_BYTES of a body (the rest is dropped). */
async function readAnswer (body: AsyncIterable<Buffer>): Promise<string> {
  let text = ''
  for await (const chunk of body) {
    text += chunk.toString('utf8')
    if (text.length > MAX_ANSWER_BYTES) break
  }
  return text.slice(0, MAX_ANSWER_BYTES)
}

function retryAfterMs (value: string | string[] | undefined, now: number): number | undefined {
  if (typeof value !== 'string') return undefined
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/**
 * Delivers outbox events to services' `/sso/event/`: claimed under a lease, in order per
 * (service, user), signed the Standard Webhooks way, with timeouts, no redirects followed,
 * retried with backoff and jitter, dead-lettered after about three days.
 */
export class OutboxDispatcher {
  readonly #o: OutboxDispatcherOptions
  readonly #agent: Dispatcher
  readonly #ownAgent: boolean
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #again = false
  #closed = false
  /** Deliveries under way, by event id, with the means to abort them at shutdown. */
  readonly #inflight = new Map<string, { done: Promise<unknown>, abort: AbortController }>()
  /** Events whose delivery close() cut short: given back, not counted as attempts. */
  readonly #released = new Set<string>()
  readonly #schedule: readonly number[]
  /**
   * How long a claim holds an event: longer than any attempt can take (each is bounded by
   * `timeout`), short enough that events claimed by a crashed process go out again soon.
   */
  readonly #leaseMs: number
  #statusLoggedAt = -Infinity
  /** Wakes a run that is waiting on slow deliveries, so it claims newly due events at once. */
  #wake: (() => void) | undefined
  /**
   * Services whose events wait because the service could not be reached (no HTTP answer, or
   * a proxy's 502/503/504), with the time before which they are not resumed. Their backlog goes
   * out as soon as they are seen again: a probe answers, a delivery succeeds, or they call us.
   */
  readonly #unreachable = new Map<string, number>()
  /**
   * Resumes of a service not followed by a successful delivery: each one doubles the wait before
   * the next (5 s, 10 s, 20 s ... 5 min), so a service that answers probes but still fails events
   * cannot burn its events' attempts.
   */
  readonly #resumes = new Map<string, number>()
  #probeTimer: NodeJS.Timeout | undefined
  #probing = false

  constructor (options: OutboxDispatcherOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
    this.#schedule = options.retrySchedule ?? RETRY_SCHEDULE
    this.#leaseMs = 2 * options.timeout + 1000
    this.#ownAgent = options.dispatcher === undefined
    this.#agent = options.dispatcher ?? new Agent({ connections: 8, connect: { timeout: Math.min(options.timeout, 5000) } })
  }

  /** Starts polling for due events. */
  start (): void {
    this.#timer = setInterval(() => this.kick(), this.#o.interval)
    this.#timer.unref()
    this.#probeTimer = setInterval(() => { void this.#probe() }, this.#o.probeInterval ?? PROBE_INTERVAL)
    this.#probeTimer.unref()
    // Events left waiting by an earlier run: their services are probed like any unreachable one.
    void this.#o.store.outbox.status().then((all) => {
      // failingSince is set only while events of the service are pending and failing.
      for (const s of all) if (s.failingSince !== null) this.#unreachable.set(s.serviceId, -Infinity)
    }, (err: unknown) => { this.#o.log.warn({ err }, 'sso outbox: reading the delivery status failed') })
    this.kick()
  }

  /**
   * A service proved it is up (it called the gateway, or a probe got an answer): if its events
   * wait because it was unreachable, they are made due now.
   */
  seen (serviceId: string): void {
    const notBefore = this.#unreachable.get(serviceId)
    if (notBefore === undefined || this.#closed || this.#now() < notBefore) return
    this.#resumes.set(serviceId, (this.#resumes.get(serviceId) ?? 0) + 1)
    this.#resume(serviceId)
  }

  /**
   * Makes a service's waiting events due now. `kick`: claim them at once; a resume caused by a
   * delivery does not, so it never claims events an inline delivery (deliverNow) is about to
   * send itself: the run that delivered, or the next poll, takes them.
   */
  #resume (serviceId: string, kick = true): void {
    this.#unreachable.delete(serviceId)
    this.#o.store.outbox.expediteService(serviceId, this.#now()).then((n) => {
      if (n > 0) this.#o.log.info({ audit: 'backlog_resumed', service: serviceId, events: n }, 'sso outbox: a service is back, its waiting events go out now')
      if (kick) this.kick()
    }, (err: unknown) => { this.#o.log.warn({ err }, 'sso outbox: making waiting events due failed') })
  }

  /** One probe round: a HEAD to each unreachable service's event URL; any answer but 429 or 5xx means it is back. */
  async #probe (): Promise<void> {
    if (this.#probing || this.#unreachable.size === 0) return
    this.#probing = true
    try {
      await Promise.all([...this.#unreachable.keys()].slice(0, 32).map(async (id) => {
        const service = await this.#o.store.services.byId(id)
        if (service === null || !service.enabled) {
          this.#unreachable.delete(id)
          return
        }
        try {
          const timeout = Math.min(this.#o.timeout, 2000)
          const res = await request(service.eventUrl, {
            method: 'HEAD', dispatcher: this.#agent, headersTimeout: timeout, bodyTimeout: timeout, signal: AbortSignal.timeout(timeout)
          })
          await res.body.dump()
          if (res.statusCode < 500 && res.statusCode !== 429) this.seen(id)
        } catch {
          // Still unreachable: the events keep their schedule.
        }
      }))
    } catch (err) {
      this.#o.log.warn({ err }, 'sso outbox: probing services failed')
    } finally {
      this.#probing = false
    }
  }

  /** Looks for due events now (coalesced with a run already going). */
  kick (): void {
    if (this.#closed) return
    if (this.#running !== undefined) {
      this.#again = true
      this.#wake?.()
      return
    }
    this.#running = this.#drain().finally(() => {
      this.#running = undefined
      if (this.#again) {
        this.#again = false
        this.kick()
      }
    })
  }

  /** Resolves when no run is going (for tests and benchmarks). */
  async idle (): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  /**
   * One run: claims due events and delivers them, up to BATCH at a time. It does not wait
   * for a whole batch: once a quarter of the slots are free, or a kick says more is due, it
   * claims again, so a service that hangs (until `timeout`) never holds up the others, and a
   * backlog is claimed in chunks (one claim transaction per event would double the writes).
   */
  async #drain (): Promise<void> {
    const going = new Set<Promise<void>>()
    let failed = false
    try {
      for (;;) {
        const kicked = this.#again
        this.#again = false
        if (failed) {
          failed = false
          await this.#logStatus()
        }
        const room = this.#closed ? 0 : BATCH - going.size
        const claim = room > 0 && (room >= REFILL || going.size === 0 || kicked)
        const events = claim ? await this.#o.store.outbox.claim(this.#now(), this.#leaseMs, room) : []
        for (const e of events) {
          const p: Promise<void> = this.#deliver(e)
            .then((ok) => { if (!ok) failed = true }, (err: unknown) => {
              failed = true
              this.#o.log.error({ err, event: e.id }, 'sso outbox: recording a delivery failed')
            })
            .finally(() => going.delete(p))
          going.add(p)
        }
        if (going.size === 0) break
        if (claim && events.length === room) continue
        await Promise.race([...going, new Promise<void>((resolve) => { this.#wake = resolve })])
        this.#wake = undefined
      }
    } catch (err) {
      this.#o.log.error({ err }, 'sso outbox: claiming events failed')
      await Promise.allSettled(going)
    }
  }

  /**
   * Logs how delivery stands for each service with pending or dead events, at most once a
   * minute (however often deliveries fail): the operator sees a failing service without
   * polling the API, and the status query does not run at every poll.
   */
  async #logStatus (): Promise<void> {
    const now = this.#now()
    if (now - this.#statusLoggedAt < STATUS_LOG_MS) return
    this.#statusLoggedAt = now
    for (const s of await this.#o.store.outbox.status()) {
      const service = await this.#o.store.services.byId(s.serviceId)
      this.#o.log.warn({
        audit: 'delivery_status',
        service: service?.name ?? s.serviceId,
        pending: s.pending,
        dead: s.dead,
        failingSince: s.failingSince === null ? null : new Date(s.failingSince).toISOString()
      }, 'sso outbox: events waiting for a service')
    }
  }

  /**
   * Tries to deliver these events right away and waits at most `timeout` ms.
   * True when all were delivered in time; otherwise they stay queued.
   */
  async deliverNow (ids: string[], timeout: number): Promise<boolean> {
    if (this.#closed || ids.length === 0) return ids.length === 0
    let timer: NodeJS.Timeout | undefined
    const attempt = (async () => {
      const events = await this.#o.store.outbox.claim(this.#now(), this.#leaseMs, ids.length, ids)
      if (events.length < ids.length) {
        await Promise.all(events.map(async (e) => await this.#o.store.outbox.release(e.id)))
        return false
      }
      const results = await Promise.all(events.map((e) => this.#deliver(e)))
      return results.every(Boolean)
    })()
    const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeout) })
    const delivered = await Promise.race([attempt, timedOut]).catch((err: unknown) => {
      this.#o.log.error({ err }, 'sso outbox: immediate delivery failed')
      return false
    })
    clearTimeout(timer)
    return delivered
  }

  /** Delivers one claimed event, tracked so close() can wait for it or cut it short. */
  async #deliver (event: OutboxEvent): Promise<boolean> {
    const abort = new AbortController()
    const done = this.#attempt(event, abort.signal)
    this.#inflight.set(event.id, { done, abort })
    try {
      return await done
    } finally {
      this.#inflight.delete(event.id)
    }
  }

  async #attempt (event: OutboxEvent, signal: AbortSignal): Promise<boolean> {
    const { store, log } = this.#o
    const service = await store.services.byId(event.serviceId)
    if (service === null || !service.enabled) {
      await store.outbox.fail(event.id, 'service removed or disabled', null, this.#now())
      log.warn({ audit: 'event_dead', event: event.id, service: event.serviceId }, 'sso event dropped: service removed or disabled')
      return false
    }
    const outcome = await this.#send(service, event, signal)
    if (this.#released.delete(event.id)) {
      // Cut short by close(): give the event back at once, without counting an attempt.
      await store.outbox.release(event.id)
      log.warn({ audit: 'event_released', event: event.id, service: service.name }, 'sso event delivery interrupted by shutdown; released')
      return false
    }
    if (outcome.ok) {
      await store.outbox.complete(event.id)
      this.#resumes.delete(service.id)
      if (this.#unreachable.has(service.id)) this.#resume(service.id, false)
      log.info({ audit: 'event_delivered', event: event.id, service: service.name, attempts: event.attempts + 1 }, 'sso event delivered')
      return true
    }
    const delay = this.#schedule[event.attempts]
    const notYet = outcome.status !== undefined && NOT_YET.has(outcome.status) && event.attempts + 1 < AUTH_FAILURE_ATTEMPTS
    if ((outcome.final && !notYet) || delay === undefined) {
      await store.outbox.fail(event.id, outcome.error, null, this.#now())
      log.error({ audit: 'event_dead', event: event.id, service: service.name, attempts: event.attempts + 1, error: outcome.error },
        'sso event dead-lettered')
      return false
    }
    if (outcome.status === undefined || UNREACHABLE.has(outcome.status)) {
      const resumes = this.#resumes.get(service.id) ?? 0
      if (!this.#unreachable.has(service.id)) {
        this.#unreachable.set(service.id, resumes === 0 ? -Infinity : this.#now() + Math.min(PROBE_INTERVAL * 2 ** resumes, 300_000))
      }
    }
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4))
    const next = this.#now() + Math.max(jittered, outcome.retryAfter ?? 0)
    await store.outbox.fail(event.id, outcome.error, next, this.#now())
    log.warn({ audit: 'event_failed', event: event.id, service: service.name, attempts: event.attempts + 1, error: outcome.error, retryAt: next },
      'sso event delivery failed, will retry')
    return false
  }

  async #send (service: ServiceRecord, event: OutboxEvent, abort: AbortSignal): Promise<Outcome> {
    const timestamp = Math.floor(this.#now() / 1000)
    const timeout = this.#o.timeout
    const body = bodyFor(service, event.payload)
    try {
      const res = await request(service.eventUrl, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: { 'content-type': 'application/json', ...signWebhook(signingSecrets(service, this.#now()), event.id, timestamp, body) },
        body,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.any([AbortSignal.timeout(timeout), abort])
      })
      const status = res.statusCode
      if (status >= 200 && status < 300) {
        // A 2xx is a success only when the body says so (django-sso answers failures with 200).
        const refusal = refusalIn(await readAnswer(res.body), service.protocol === 'fastify-sso')
        return refusal === null ? { ok: true } : { ok: false, final: false, error: refusal, status }
      }
      await res.body.dump()
      const error = `HTTP ${status}`
      const retryAfter = retryAfterMs(res.headers['retry-after'], this.#now())
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { ok: false, final: true, error, status }
      return retryAfter === undefined ? { ok: false, final: false, error, status } : { ok: false, final: false, error, retryAfter, status }
    } catch (err) {
      return { ok: false, final: false, error: (err as Error).message }
    }
  }

  /**
   * Stops claiming and waits up to `deadline` ms for deliveries in flight; those still going
   * then are aborted and their events released (not counted as attempts), so another
   * dispatcher or the next start sends them at once. Then closes the pool.
   */
  async close (deadline = 5000): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    clearInterval(this.#probeTimer)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...[...this.#inflight.values()].map((d) => d.done), this.#running]),
      new Promise((resolve) => { timer = setTimeout(resolve, deadline) })
    ])
    clearTimeout(timer)
    const cut = [...this.#inflight]
    for (const [id, d] of cut) {
      this.#released.add(id)
      d.abort.abort()
    }
    await Promise.allSettled(cut.map(([, d]) => d.done))
    if (this.#ownAgent) await this.#agent.destroy()
  }
}
