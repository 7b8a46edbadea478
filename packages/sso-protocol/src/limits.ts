/** One fixed window of a counted key: how many hits so far, and when the window ends (ms since the epoch). */
export interface LimitWindow {
  count: number
  resetAt: number
}

/**
 * Where throttles and budgets count (the per-address sign-in throttle, the per-account
 * failure window, a service's obtain budget). Every call is atomic: parallel `hit`s on one
 * key, from any number of processes sharing the store, each get a distinct count, so a budget
 * of `max` lets exactly `max` through. A store that cannot answer rejects; callers then
 * refuse the attempt (fail closed). Template of your own:
 *
 * ```ts
 * const store: LimitStore = {
 *   async hit (key, windowMs) { ... },  // +1 in the live window (a new one of windowMs if none)
 *   async peek (key) { ... },           // the live window, or null; counts nothing
 *   async reset (key) { ... }           // forgets the key
 * }
 * ```
 */
export interface LimitStore {
  /** Counts one hit for `key` in its live window (a new window of `windowMs` starts when there is none) and returns the window after it. */
  hit: (key: string, windowMs: number) => Promise<LimitWindow>
  /** The live window of `key`, or null; counts nothing. */
  peek: (key: string) => Promise<LimitWindow | null>
  /** Forgets `key` (a successful sign-in clears its failures). */
  reset: (key: string) => Promise<void>
}

/** Whether `value` has the three methods of a `LimitStore`. */
export function isLimitStore (value: unknown): value is LimitStore {
  const v = value as Partial<LimitStore> | null
  return typeof v === 'object' && v !== null && typeof v.hit === 'function' && typeof v.peek === 'function' && typeof v.reset === 'function'
}

/**
 * Counts in this process's memory (the default): right for ONE process. With several
 * processes each would count alone, so N processes would allow N times each budget: give
 * them a shared store (`RedisLimitStore`). Bounded: past `maxKeys` keys the oldest go first.
 */
export class MemoryLimitStore implements LimitStore {
  readonly #windows = new Map<string, LimitWindow>()
  readonly #maxKeys: number
  readonly #now: () => number

  /**
   * @param maxKeys keys kept at most. @default 100_000
   * @param now the clock (tests). @default Date.now
   */
  constructor (maxKeys = 100_000, now: () => number = Date.now) {
    this.#maxKeys = maxKeys
    this.#now = now
  }

  async hit (key: string, windowMs: number): Promise<LimitWindow> {
    const now = this.#now()
    let window = this.#windows.get(key)
    if (window === undefined || window.resetAt <= now) {
      this.#windows.delete(key)
      // A Map iterates in insertion order: the oldest windows go first.
      for (const [old, w] of this.#windows) {
        if (this.#windows.size < this.#maxKeys && w.resetAt > now) break
        this.#windows.delete(old)
      }
      window = { count: 0, resetAt: now + windowMs }
      this.#windows.set(key, window)
    }
    window.count++
    return { ...window }
  }

  async peek (key: string): Promise<LimitWindow | null> {
    const window = this.#windows.get(key)
    return window === undefined || window.resetAt <= this.#now() ? null : { ...window }
  }

  async reset (key: string): Promise<void> {
    this.#windows.delete(key)
  }
}

/**
 * The one Redis call the stores of this project make: `EVAL script numKeys ...keys ...args`.
 * An ioredis client (`new Redis(url)`) has it; so does anything with the same method.
 */
export interface RedisClient {
  eval: (script: string, numKeys: number, ...args: Array<string | number>) => Promise<unknown>
}

/** Whether `value` looks like a Redis client (has `eval`). */
export function isRedisClient (value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null && typeof (value as { eval?: unknown }).eval === 'function'
}

/** Options of `new RedisLimitStore(...)`. */
export interface RedisLimitStoreOptions {
  /** An ioredis client (or anything with its `eval`). */
  redis: RedisClient
  /** Prefix of every key the store writes. @default 'sso:limits:' */
  prefix?: string
  /** A Redis call that takes longer fails (the attempt is refused), in ms. @default 2000 */
  timeout?: number
}

// INCR and its expiry in one script: a window always gets its TTL, even if the client dies in between.
const HIT = `local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {c, ttl}`
const PEEK = `local c = redis.call('GET', KEYS[1])
if not c then return false end
return {tonumber(c), redis.call('PTTL', KEYS[1])}`
const RESET = "return redis.call('DEL', KEYS[1])"

/** Rejects with `message` if `promise` is not settled within `ms`. */
export async function withTimeout<T> (promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(message)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Counts in Redis, shared by every process that uses the same Redis and prefix: the budgets
 * hold whatever the number of processes. Each key is one Redis string (`INCR`) whose TTL is
 * its window, set in the same Lua script, so Redis forgets a window when it ends.
 */
export class RedisLimitStore implements LimitStore {
  readonly #redis: RedisClient
  readonly #prefix: string
  readonly #timeout: number

  constructor (options: RedisLimitStoreOptions) {
    this.#redis = options.redis
    this.#prefix = options.prefix ?? 'sso:limits:'
    this.#timeout = options.timeout ?? 2000
  }

  async #eval (script: string, key: string, ...args: number[]): Promise<unknown> {
    return await withTimeout(this.#redis.eval(script, 1, this.#prefix + key, ...args), this.#timeout, `Redis did not answer within ${this.#timeout} ms`)
  }

  async hit (key: string, windowMs: number): Promise<LimitWindow> {
    const [count, ttl] = await this.#eval(HIT, key, windowMs) as [number, number]
    return { count, resetAt: Date.now() + ttl }
  }

  async peek (key: string): Promise<LimitWindow | null> {
    const got = await this.#eval(PEEK, key) as [number, number] | null
    return got === null ? null : { count: got[0], resetAt: Date.now() + Math.max(got[1], 0) }
  }

  async reset (key: string): Promise<void> {
    await this.#eval(RESET, key)
  }
}
