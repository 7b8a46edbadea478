import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { LimitStore, LimitWindow } from 'fastify-sso-protocol'
import { errors } from './errors.js'

/**
 * The gateway's throttles and budgets over one `LimitStore` (the `limits` option). A store
 * that fails (Redis unreachable) fails closed: the call throws `FST_SSO_GATEWAY_UNAVAILABLE`
 * (503), so no password is checked and no token issued while nothing counts them.
 */
export class Limits {
  readonly #store: LimitStore

  constructor (store: LimitStore) {
    this.#store = store
  }

  /** Runs a store call; a failure becomes `UNAVAILABLE` with the store's error as its cause (logged by the error handler). */
  async #call<T> (run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      const error = new errors.UNAVAILABLE()
      error.cause = err
      throw error
    }
  }

  /** Counts one hit; resolves to the window after it. */
  async hit (key: string, windowMs: number): Promise<LimitWindow> {
    return await this.#call(async () => await this.#store.hit(key, windowMs))
  }

  /** The live window of `key`, or null; counts nothing. */
  async peek (key: string): Promise<LimitWindow | null> {
    return await this.#call(async () => await this.#store.peek(key))
  }

  /** Ms until `key` is under `max` again (0 when it is under now); counts nothing. */
  async blockedFor (key: string, max: number): Promise<number> {
    const window = await this.peek(key)
    return window !== null && window.count >= max ? Math.max(window.resetAt - Date.now(), 1) : 0
  }

  async reset (key: string): Promise<void> {
    await this.#call(async () => { await this.#store.reset(key) })
  }

  /**
   * A store class for @fastify/rate-limit counting in this `LimitStore` under `name`: every
   * route (`/login` and `/login/`) and every process share one budget per client address.
   */
  rateLimitStore (name: string): FastifyRateLimitStoreCtor {
    const limits = this
    return class SharedRateLimitStore implements FastifyRateLimitStore {
      incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
        limits.hit(`${name}:${key}`, timeWindow).then(
          (w) => { callback(null, { current: w.count, ttl: Math.max(w.resetAt - Date.now(), 0) }) },
          (err: Error) => { callback(err) })
      }

      child (): FastifyRateLimitStore {
        return this
      }
    }
  }
}
