import type { FastifyReply, FastifyRequest, onSendAsyncHookHandler, Session } from 'fastify'
import type { AsyncSessionCalls } from 'fastify-sso-protocol'
import { DatabaseUnavailableError } from './errors.js'
import { databaseUnavailablePage, type Pages } from './html.js'

/**
 * The session store as @fastify/session sees it (through `callbackSessionStore`). A session
 * that cannot be saved (database full or read-only) does not fail inside @fastify/session's
 * own onSend hook, where Fastify could only answer its raw JSON 500: the failure is noted and
 * `databaseFailureHook` turns the response into a 503 page (or JSON for non-browsers). A
 * session that cannot be read is treated as absent (the request is anonymous: fail closed);
 * one that cannot be deleted is a `DatabaseUnavailableError` for the route's error handler.
 */
export class GuardedSessionStore implements AsyncSessionCalls<Session> {
  readonly #calls: AsyncSessionCalls<Session>
  readonly #failed = new WeakSet<object>()
  readonly #log: (err: unknown, what: string) => void

  constructor (calls: AsyncSessionCalls<Session>, log: (err: unknown, what: string) => void) {
    this.#calls = calls
    this.#log = log
  }

  async get (sid: string): Promise<Session | null> {
    try {
      return await this.#calls.get(sid)
    } catch (err) {
      this.#log(err, 'reading a session')
      return null
    }
  }

  async set (sid: string, session: Session): Promise<void> {
    try {
      await this.#calls.set(sid, session)
    } catch (err) {
      this.#log(err, 'saving a session')
      this.#failed.add(session)
    }
  }

  async destroy (sid: string): Promise<void> {
    try {
      await this.#calls.destroy(sid)
    } catch (err) {
      this.#log(err, 'deleting a session')
      throw new DatabaseUnavailableError()
    }
  }

  /** Whether saving this request's session failed. */
  failed (request: FastifyRequest): boolean {
    return this.#failed.has(request.session as object)
  }
}

function wantsHtml (request: FastifyRequest): boolean {
  return String(request.headers.accept ?? '').toLowerCase().includes('text/html')
}

/**
 * onSend hook, after @fastify/session's: a response whose session could not be saved becomes a
 * 503 (with `Retry-After`) saying so, instead of pretending the sign-in or sign-out worked.
 */
export function databaseFailureHook (guard: GuardedSessionStore, pages: Pages, headers: Record<string, string>): onSendAsyncHookHandler<unknown> {
  return async function ssoSessionSaveFailed (request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    if (!guard.failed(request)) return payload
    const err = new DatabaseUnavailableError()
    reply.code(503).removeHeader('location').removeHeader('set-cookie').header('retry-after', 60).header('cache-control', 'no-store')
    if (wantsHtml(request)) {
      const { html, locale } = databaseUnavailablePage(pages, request)
      reply.headers(headers).header('content-type', 'text/html; charset=utf-8').header('content-language', locale)
      return html
    }
    reply.header('content-type', 'application/json; charset=utf-8')
    return JSON.stringify({ error: err.message, code: err.code })
  }
}
