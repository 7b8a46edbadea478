import { createHmac } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { generateToken, safeEqual } from 'fastify-sso-protocol'
import type { ResolvedGatewayOptions } from './options.js'

/**
 * The sign-in form's CSRF token for a browser with no gateway session: bound to a random
 * value in a short-lived, HttpOnly cookie (HMAC with the session secret), so showing the form
 * to an anonymous visitor stores nothing on the server. The session (and its row) starts
 * only when a password is accepted.
 */
export class FormTokens {
  readonly #key: string
  readonly #secure: boolean
  readonly cookie: string
  constructor (options: ResolvedGatewayOptions) {
    this.#key = Array.isArray(options.sessionSecret) ? options.sessionSecret[0] as string : options.sessionSecret
    this.#secure = options.cookieSecure
    // `__Host-` (HTTPS only): no sibling subdomain can plant its own value.
    this.cookie = `${options.cookieSecure ? '__Host-' : ''}${options.cookieName}_form`
  }

  #mac (nonce: string): string {
    return createHmac('sha256', this.#key).update(`login-form:${nonce}`).digest('base64url')
  }

  /** The token for this browser's form cookie (set now if it has none). */
  issue (request: FastifyRequest, reply: FastifyReply, maxAge: number): string {
    let nonce = request.cookies[this.cookie]
    if (nonce === undefined || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = generateToken()
      // As @fastify/session does: a Secure cookie is never sent over plain HTTP (the form then cannot be posted).
      if (!this.#secure || request.protocol === 'https') reply.setCookie(this.cookie, nonce, { httpOnly: true, sameSite: 'lax', secure: this.#secure, path: '/', maxAge: Math.floor(maxAge / 1000) })
    }
    return this.#mac(nonce)
  }

  /** A CSRF preHandler for forms an anonymous browser may post: this cookie-bound token, or the session's. */
  preHandler (fastify: FastifyInstance) {
    const sessionCheck = fastify.csrfProtection
    return (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
      if (this.valid(request)) {
        done()
        return
      }
      sessionCheck.call(fastify, request, reply, done)
    }
  }

  /** Whether the posted token matches this browser's form cookie. */
  valid (request: FastifyRequest): boolean {
    const nonce = request.cookies[this.cookie]
    const given = (request.body as { _csrf?: unknown } | undefined)?._csrf
    return nonce !== undefined && typeof given === 'string' && safeEqual(given, this.#mac(nonce))
  }
}
