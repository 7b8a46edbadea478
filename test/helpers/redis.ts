import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket, connect } from 'node:net'
import type { Test } from 'tap'
import { Redis } from 'ioredis'

/** The machine's Redis (started by .ci/run when it is down). */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A fresh key prefix for one test: tests run in parallel with other checkouts' tests on one Redis. */
export function randomPrefix (what = 'test'): string {
  return `sso-test:${what}:${randomBytes(6).toString('hex')}:`
}

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deleteKeys (redis: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) deleted += await redis.del(...keys)
  } while (cursor !== '0')
  return deleted
}

/**
 * A Redis client for one test and a prefix of its own; at teardown its keys are deleted and
 * the client closed.
 */
export function testRedis (t: Test, what?: string): { redis: Redis, prefix: string } {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  const prefix = randomPrefix(what)
  t.teardown(async () => {
    await deleteKeys(redis, prefix)
    redis.disconnect()
  })
  return { redis, prefix }
}

/**
 * A TCP proxy in front of the machine's Redis, to cut and restore (never stop the real
 * Redis: others use it). `cut()` closes the listener and every open connection; `restore()`
 * listens again on the same port.
 */
export class TcpProxy {
  readonly #target: { host: string, port: number }
  readonly #sockets = new Set<Socket>()
  #server: Server | null = null
  port = 0

  constructor (target = new URL(REDIS_URL)) {
    this.#target = { host: target.hostname, port: Number(target.port || 6379) }
  }

  async start (port = 0): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(this.#target.port, this.#target.host)
      for (const s of [client, upstream]) {
        this.#sockets.add(s)
        s.on('close', () => { this.#sockets.delete(s) })
        s.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => { resolve() })
    })
    this.#server = server
    this.port = (server.address() as { port: number }).port
    return this.port
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async cut (): Promise<void> {
    const server = this.#server
    this.#server = null
    for (const s of this.#sockets) s.destroy()
    if (server !== null) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }

  async restore (): Promise<void> {
    await this.start(this.port)
  }
}

/** Polls `check` every 50 ms until it holds, for at most `ms`. */
export async function waitFor (what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}
