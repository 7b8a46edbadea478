import type { FastifyBaseLogger } from 'fastify'
import { generateToken, hashToken, safeEqual, type SsoPrompt } from 'fastify-sso-protocol'
import { errors } from './errors.js'
import { isDjango } from './outbox/events.js'
import type { GatewayStore, NewOutboxEvent, RequestTokenRecord, ServiceRecord, TokenWithUser } from './store/store.js'

/**
 * The life of an authentication request token, in one place. Every transition is one atomic
 * check-and-set in the store; routes call these methods and never the store.
 *
 * | from          | to            | by                                                                |
 * | ------------- | ------------- | ----------------------------------------------------------------- |
 * | (none)        | pending       | `issue`: a service's `/sso/obtain/`                               |
 * | pending       | authenticated | `authenticate`: a signed-in browser at `/login/?sso=T`, not into an ended SSO session |
 * | pending       | declined      | `decline`: a passive request (`prompt=none`) met no signed-in browser |
 * | declined      | used          | `read`: its service learns, once, that nobody is signed in        |
 * | authenticated | used          | `consume`: its service's `/sso/make_used/`, with the browser code  |
 * | any           | used          | `burn`: another service presented it, or it came without its code |
 * | authenticated | used          | its SSO session ends (sign-out, revocation, expiry): burnt with it (in the store's transaction) |
 *
 * A token expires after `pendingTokenTtl` (pending, declined) or `authenticatedTokenTtl` from
 * authentication; an expired token is in no state (it reads as unknown) and is pruned.
 */
export class RequestTokens {
  readonly #store: GatewayStore
  readonly #ttl: { pending: number, authenticated: number }
  readonly #queued: () => void

  /** `queued` is called after a transition queued events (to wake the outbox). */
  constructor (store: GatewayStore, ttl: { pending: number, authenticated: number }, queued: () => void) {
    this.#store = store
    this.#ttl = ttl
    this.#queued = queued
  }

  /** (none) → pending. Returns the token to give the service (only its hash is stored). */
  async issue (service: ServiceRecord, nextUrl: string, prompt: SsoPrompt | null): Promise<string> {
    const token = generateToken()
    const now = Date.now()
    await this.#store.tokens.create({ hash: hashToken(token), serviceId: service.id, nextUrl, prompt, expiresAt: now + this.#ttl.pending, createdAt: now })
    return token
  }

  /** The pending request a browser brings (`?sso=T`) and its service, or null if it is not pending or the service is gone or disabled. */
  async pending (raw: string): Promise<{ token: RequestTokenRecord | null, service: ServiceRecord | null }> {
    const token = await this.#store.tokens.get(hashToken(raw), Date.now())
    const service = token === null ? null : await this.#store.services.byId(token.serviceId)
    if (token === null || token.status !== 'pending' || service === null || !service.enabled) return { token: null, service: service?.enabled === true ? service : null }
    return { token, service }
  }

  /**
   * pending → authenticated for a user in an SSO session, with the events that sign-in causes
   * (in the same transaction). Returns the one-time browser code for the redirect (null for
   * django-sso services, which cannot carry it), or false if the token was no longer pending
   * or the SSO session has ended meanwhile.
   */
  async authenticate (token: RequestTokenRecord, service: ServiceRecord, by: { userId: string, ssoSession: string, sessionEndsAt: number, authAt: number },
    events: NewOutboxEvent[]): Promise<{ code: string | null } | false> {
    const now = Date.now()
    // The code binds the request to this browser: only the browser sent back to the service
    // carries it, so a token an attacker started cannot be finished in the attacker's browser.
    const code = isDjango(service) ? null : generateToken()
    const ok = await this.#store.tokens.authenticate(token.hash, {
      ...by, codeHash: code === null ? null : hashToken(code), expiresAt: now + this.#ttl.authenticated
    }, now, () => events)
    if (!ok) return false
    if (events.length > 0) this.#queued()
    return { code }
  }

  /** pending → declined. */
  async decline (token: RequestTokenRecord): Promise<void> {
    await this.#store.tokens.decline(token.hash, Date.now())
  }

  /** any → used. */
  async burn (hash: string): Promise<void> {
    await this.#store.tokens.burn(hash)
  }

  /** A token presented by `service`: another service's is burnt on the spot. */
  async #refuseOthers (service: ServiceRecord, token: RequestTokenRecord, log: FastifyBaseLogger): Promise<void> {
    if (token.serviceId === service.id) return
    await this.burn(token.hash)
    log.warn({ audit: 'token_wrong_service', service: service.name }, 'sso token presented by another service: burnt')
    throw new errors.INVALID_REQUEST_TOKEN()
  }

  /**
   * An authenticated request of a fastify-sso service is only good with the code its browser
   * brought back: without it (or with another), the token is burnt.
   */
  async #requireCode (service: ServiceRecord, token: RequestTokenRecord, code: string | undefined, log: FastifyBaseLogger): Promise<void> {
    if (token.codeHash === null) return
    if (code !== undefined && safeEqual(hashToken(code), token.codeHash)) return
    await this.burn(token.hash)
    log.warn({ audit: 'token_code_mismatch', service: service.name }, 'sso token presented without its browser code: burnt')
    throw new errors.INVALID_REQUEST_TOKEN()
  }

  /**
   * `/sso/get/`: an authenticated token of the service (with its browser code) and its user and
   * groups when the store reads them in the same query (`getWithUser`), or `declined`
   * (declined → used: answered once). Throws `INVALID_REQUEST_TOKEN` (unknown, used, expired,
   * another service's, wrong code: the last two burn it) or `PENDING`.
   */
  async read (service: ServiceRecord, raw: string, code: string | undefined, log: FastifyBaseLogger): Promise<Partial<TokenWithUser> & { token: RequestTokenRecord } | 'declined'> {
    const hash = hashToken(raw)
    const now = Date.now()
    const tokens = this.#store.tokens
    const found = tokens.getWithUser !== undefined ? await tokens.getWithUser(hash, now) : { token: await tokens.get(hash, now) }
    const token = found?.token ?? null
    if (token === null || token.status === 'used') throw new errors.INVALID_REQUEST_TOKEN()
    await this.#refuseOthers(service, token, log)
    if (token.status === 'pending') throw new errors.PENDING()
    if (token.status === 'declined') {
      if (!await this.#store.tokens.spendDeclined(hash, service.id, Date.now())) throw new errors.INVALID_REQUEST_TOKEN()
      return 'declined'
    }
    await this.#requireCode(service, token, code, log)
    return found as Partial<TokenWithUser> & { token: RequestTokenRecord }
  }

  /**
   * `/sso/make_used/`: authenticated → used, one atomic check-and-set with the browser code;
   * exactly one of concurrent calls wins. The reason is looked up only on failure.
   */
  async consume (service: ServiceRecord, raw: string, code: string | undefined, log: FastifyBaseLogger): Promise<RequestTokenRecord> {
    const hash = hashToken(raw)
    const now = Date.now()
    const used = await this.#store.tokens.consume(hash, service.id, now, code === undefined ? null : hashToken(code))
    if (used !== null) return used
    const token = await this.#store.tokens.get(hash, now)
    if (token !== null) await this.#refuseOthers(service, token, log)
    if (token?.status === 'authenticated') await this.#requireCode(service, token, code, log)
    if (token?.status === 'pending') throw new errors.PENDING()
    log.warn({ audit: 'token_replayed', service: service.name }, 'sso token replay refused')
    throw new errors.INVALID_REQUEST_TOKEN()
  }
}
