/**
 * Fastify server options we recommend for an app hosting either plugin: Fastify's own
 * defaults wait forever for a request body (`requestTimeout: 0`) and for an idle socket
 * (`connectionTimeout: 0`), so a client that stalls mid-request holds a socket open
 * indefinitely. Spread them into `Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger })`.
 */
export const RECOMMENDED_SERVER_OPTIONS = Object.freeze({
  /** The whole request (headers and body) must arrive within 15 s, else the socket is closed (Node answers 408). */
  requestTimeout: 15_000,
  /** A socket with no traffic for 30 s is closed. */
  connectionTimeout: 30_000,
  /** An idle keep-alive socket is closed after 5 s. */
  keepAliveTimeout: 5_000,
  /** Node checks `requestTimeout` this often (its default, 30 s, would let a stalled request live up to 45 s). */
  http: Object.freeze({ connectionsCheckingInterval: 2_000 })
})
