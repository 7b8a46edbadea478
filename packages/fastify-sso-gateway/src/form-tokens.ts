import { createHmac } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { generateToken, safeEqual } from 'fastify-sso-protocol'
import type { ResolvedGatewayOptions } from './options.js'

/** Whether the browser sent a sign-in form cookie back (plain or `__Host-`), for the session cookie `cookieName`. */
export function formCookieSent (request: FastifyRequest, cookieName: string): boolean {
  const cookies = request.cookies
  return cookies[`${cookieName}_form`] !== undefined || cookies[`__Host-${cookieName}_form`] !== undefined
}

/**
 * The sign-in form's CSRF token for a browser with no gateway session: bound to a random
 * value in a short-lived, HttpOnly cookie (HMAC with the session secret), so showing the form
 * to an anonymous visitor stores nothing on the server. The session (and its row) starts
 * only when a password is accepted.
 */
export class FormTokens {
  readonly #key: string
  readonly #secure: boolean | 'auto'
  readonly #name: string
  /** `sessionSecret`: the option's, or the one generated and kept in the store. */
  constructor (options: ResolvedGatewayOptions, sessionSecret: string | readonly string[]) {
    this.#key = typeof sessionSecret === 'string' ? sessionSecret : sessionSecret[0] as string
    this.#secure = options.cookieSecure
    this.#name = `${options.cookieName}_form`
  }

  /**
   * This request's form cookie: Secure as the session cookie is (with 'auto': when the request
   * came over HTTPS), and then named `__Host-` (no sibling subdomain can plant its own value).
   */
  #cookie (request: FastifyRequest): { name: string, secure: boolean } {
    const secure = this.#secure === 'auto' ? request.protocol === 'https' : this.#secure
    return { name: `${secure ? '__Host-' : ''}${this.#name}`, secure }
  }

  #mac (nonce: string): string {
    return createHmac('sha256', this.#key).update(`login-form:${nonce}`).digest('base64url')
  }

  /** The token for this browser's form cookie (set now if it has none). */
  issue (request: FastifyRequest, reply: FastifyReply, maxAge: number): string {
    const { name, secure } = this.#cookie(request)
    let nonce = request.cookies[name]
    if (nonce === undefined || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = generateToken()
      // As @fastify/session does: a Secure cookie is never sent over plain HTTP (the form then cannot be posted).
      if (!secure || request.protocol === 'https') reply.setCookie(name, nonce, { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: Math.floor(maxAge / 1000) })
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

  /** Drops this browser's form cookie (the password was accepted: the session takes over). */
  clear (request: FastifyRequest, reply: FastifyReply): void {
    const { name, secure } = this.#cookie(request)
    reply.clearCookie(name, { path: '/', secure })
  }

  /** Whether the posted token matches this browser's form cookie. */
  valid (request: FastifyRequest): boolean {
    const nonce = request.cookies[this.#cookie(request).name]
    const given = (request.body as { _csrf?: unknown } | undefined)?._csrf
    return nonce !== undefined && typeof given === 'string' && safeEqual(given, this.#mac(nonce))
  }
}
