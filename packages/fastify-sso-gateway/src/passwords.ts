import { availableParallelism } from 'node:os'
import { hash as argonHash, parseOptions, verify as argonVerify } from '@node-rs/argon2'

/** argon2id cost parameters. */
export interface HashParameters {
  /** Memory in KiB. @default 19456 (19 MiB, OWASP's minimum) */
  memoryCost: number
  /** Iterations. @default 2 */
  timeCost: number
  /** Lanes. @default 1 */
  parallelism: number
}

/** OWASP Password Storage Cheat Sheet minimum for argon2id. */
export const OWASP_MINIMUM: Readonly<HashParameters> = Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 })

/** Longest password accepted, in characters; longer ones are refused without hashing. */
export const MAX_PASSWORD_LENGTH = 1024

/** `Algorithm.Argon2id` of @node-rs/argon2 (an ambient const enum, which isolatedModules cannot import). */
const ARGON2ID = 2

/**
 * Password hashing with argon2id (@node-rs/argon2: prebuilt for each platform, no install
 * script; it reads and writes the same PHC strings as the `argon2` package used before). Hashing runs on libuv's thread pool, so it does
 * not block the event loop. Unknown users are verified against a dummy hash with
 * the same parameters, so they take as long as a wrong password.
 */
export class PasswordHasher {
  readonly params: Readonly<HashParameters>
  #dummy: Promise<string> | undefined
  /** At most this many hashes run at once: more than the cores only adds queueing and memory. */
  readonly #slots: number
  #busy = 0
  readonly #waiting: Array<() => void> = []

  constructor (params: HashParameters, concurrency: number = availableParallelism()) {
    this.params = Object.freeze({ ...params })
    this.#slots = Math.max(1, concurrency)
  }

  async #limited<T> (work: () => Promise<T>): Promise<T> {
    if (this.#busy >= this.#slots) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#busy++
    try {
      return await work()
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.#waiting.shift()
      if (next === undefined) this.#busy--
      else next()
    }
  }

  async hash (password: string): Promise<string> {
    return await this.#limited(async () => await argonHash(password, { algorithm: ARGON2ID, ...this.params }))
  }

  /**
   * Verifies `password` against `hash` (or against a dummy when `hash` is null, always
   * false). `rehash` says the stored hash uses other parameters and should be replaced.
   */
  async verify (hash: string | null, password: string): Promise<{ ok: boolean, rehash: boolean }> {
    if (password.length > MAX_PASSWORD_LENGTH) return { ok: false, rehash: false }
    if (hash === null) {
      this.#dummy ??= this.hash('dummy password for unknown users')
      const dummy = await this.#dummy
      await this.#limited(async () => await argonVerify(dummy, password))
      return { ok: false, rehash: false }
    }
    let ok: boolean
    try {
      ok = await this.#limited(async () => await argonVerify(hash, password))
    } catch {
      return { ok: false, rehash: false }
    }
    return { ok, rehash: ok && this.#outdated(hash) }
  }

  /** Whether a (verified) hash was made with other parameters than the current ones. */
  #outdated (hash: string): boolean {
    const made = parseOptions(hash)
    return made.algorithm !== ARGON2ID || made.memoryCost !== this.params.memoryCost ||
      made.timeCost !== this.params.timeCost || made.parallelism !== this.params.parallelism
  }
}
