import type { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'

/** The parts of a Fastify request and reply the body deadline uses (this package does not depend on Fastify). */
interface DeadlineRequest {
  headers: Record<string, string | string[] | undefined>
  raw: { destroy: () => void }
  log: { warn: (obj: object, msg: string) => void }
}

/**
 * Fastify server options we recommend for an app hosting either plugin. Fastify's own defaults
 * never close an idle socket (`connectionTimeout: 0`) and keep idle keep-alive sockets 72 s, so a
 * client that stalls holds a socket open indefinitely. Spread them into
 * `Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger })`.
 */
export const RECOMMENDED_SERVER_OPTIONS = Object.freeze({
  /** A socket with no traffic for 10 s is closed (idle, slow-header and stalled-body sockets alike). */
  connectionTimeout: 10_000,
  /** An idle keep-alive socket is closed after 5 s. */
  keepAliveTimeout: 5_000,
  /** The whole request should arrive within 15 s (Node answers 408; see BODY_TIMEOUT for the plugins' own routes). */
  requestTimeout: 15_000,
  http: Object.freeze({
    /** The request headers must arrive within 10 s. */
    headersTimeout: 10_000,
    /** How often Node checks those two timeouts (its default, 30 s, would let a request live up to 45 s). */
    connectionsCheckingInterval: 2_000
  })
})

/**
 * How long the plugins' own routes wait for a request body that has started, in ms: a body still
 * incomplete then (a client that drips or stalls) has its socket closed, whatever the host
 * app's server options. Sign-in forms and protocol bodies are a few hundred bytes.
 */
export const BODY_TIMEOUT = 10_000

/** preParsing hook: closes the socket of a request whose body is not in after `ms` milliseconds. */
export function bodyDeadline (ms: number = BODY_TIMEOUT) {
  return function ssoBodyDeadline (request: DeadlineRequest, reply: { raw: EventEmitter }, payload: Readable, done: (err: null, payload: Readable) => void): void {
    const length = request.headers['content-length']
    if ((length === undefined || length === '0') && request.headers['transfer-encoding'] === undefined) {
      done(null, payload)
      return
    }
    const timer = setTimeout(() => {
      request.log.warn({ audit: 'request_timeout' }, 'request body not received in time: connection closed')
      request.raw.destroy()
    }, ms)
    const clear = (): void => { clearTimeout(timer) }
    payload.once('end', clear)
    payload.once('close', clear)
    reply.raw.once('close', clear)
    done(null, payload)
  }
}
