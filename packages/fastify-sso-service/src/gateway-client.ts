import { request as undiciRequest } from 'undici'
import { MAX_TOKEN_LENGTH, MAX_USERNAME_LENGTH, PATHS } from 'fastify-sso-protocol'
import type { SsoAccount, SsoPrompt } from 'fastify-sso-protocol'
import { GatewayRefusedError, GatewayUnavailableError } from './errors.js'
import type { ResolvedOptions } from './types.js'

/** Largest gateway answer read, in bytes. */
const MAX_RESPONSE_BYTES = 64 * 1024
/** Largest resync page read, in bytes. */
export const MAX_ACCOUNTS_PAGE_BYTES = 4 * 1024 * 1024

/** What `/sso/get/` told us, checked. */
export interface GetResult {
  username: string
  nextUrl: string
  /** Absent when the gateway is a django-sso one. */
  account: SsoAccount | null
  ssoSession: string | null
  /** When the gateway session behind this sign-in ends (ms), or null (django-sso gateways do not say). */
  ssoSessionEndsAt: number | null
  /** When the user last entered their password (ms), or null (django-sso gateways do not say). */
  authTime: number | null
}

/** A passive sign-in (`prompt=none`) the gateway declined: the browser is not signed in there. */
export interface GetDeclined {
  declined: 'login_required'
}

/** An account in a resync page: its current state, or deleted. */
export type ResyncAccount =
  | { deleted: false, account: SsoAccount }
  | { deleted: true, userId: string | null, username: string }

/** One page of `POST /sso/accounts/`. */
export interface AccountsPage {
  accounts: ResyncAccount[]
  /** Entries that were not accounts (skipped). */
  invalid: number
  nextCursor: string | null
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function validUsername (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_USERNAME_LENGTH
}

function validId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TOKEN_LENGTH
}

/** An account from the gateway, its flags made real booleans (missing `is_active`: true). */
export function accountFrom (u: Record<string, unknown>, username: string): SsoAccount {
  const { user_id: userId, ...rest } = u
  return {
    ...rest,
    ...(validId(userId) ? { user_id: userId } : {}),
    username,
    is_active: typeof u.is_active === 'boolean' ? u.is_active : true,
    is_staff: u.is_staff === true,
    is_superuser: u.is_superuser === true
  }
}

function gatewayMessage (body: unknown, status: number): string {
  if (isRecord(body) && typeof body.error === 'string' && body.error.length > 0) return body.error.slice(0, 200)
  return `status ${status}`
}

/** Calls the gateway's protocol endpoints over undici, with bounded timeouts. */
export class GatewayClient {
  readonly #options: ResolvedOptions

  constructor (options: ResolvedOptions) {
    this.#options = options
  }

  /** POSTs a form to the gateway; resolves with the JSON body of a 200, throws a plugin error otherwise. */
  async #post (path: string, fields: Record<string, string>, maxBytes = MAX_RESPONSE_BYTES): Promise<Record<string, unknown>> {
    const { gatewayInternalUrl, requestTimeout, dispatcher, token } = this.#options
    let status: number
    let text = ''
    try {
      const response = await undiciRequest(`${gatewayInternalUrl}${path}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, ...fields }).toString(),
        headersTimeout: requestTimeout,
        bodyTimeout: requestTimeout,
        signal: AbortSignal.timeout(requestTimeout),
        ...(dispatcher === undefined ? {} : { dispatcher })
      })
      status = response.statusCode
      let size = 0
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length
        if (size > maxBytes) {
          response.body.destroy()
          throw new Error('answer too large')
        }
        text += (chunk as Buffer).toString('utf8')
      }
    } catch (err) {
      const error = new GatewayUnavailableError('the gateway could not be reached')
      error.cause = err
      throw error
    }
    let body: unknown = null
    try {
      body = JSON.parse(text)
    } catch {}
    if (status >= 500) throw new GatewayUnavailableError(`the gateway answered with status ${status}`)
    if (status !== 200) throw new GatewayRefusedError(gatewayMessage(body, status))
    if (!isRecord(body)) throw new GatewayUnavailableError('the gateway sent an answer that is not JSON')
    // A django-sso gateway answers its refusals with HTTP 200 and `{"error": "..."}`.
    if (typeof body.error === 'string') throw new GatewayRefusedError(gatewayMessage(body, status))
    return body
  }

  /** `POST /sso/obtain/`: a fresh authentication request token for `nextUrl` (`prompt` only when given). */
  async obtain (nextUrl: string, prompt?: SsoPrompt): Promise<string> {
    const body = await this.#post(PATHS.obtain, { next_url: nextUrl, ...(prompt === undefined ? {} : { prompt }) })
    if (typeof body.token !== 'string' || body.token.length === 0) throw new GatewayUnavailableError('the gateway sent no request token')
    return body.token
  }

  /**
   * `POST /sso/get/`: who signed in with this request token. With `passive`, a
   * `{authenticated: false, reason: 'login_required'}` answer is a `GetDeclined`;
   * otherwise anything but an authenticated answer is a refusal.
   */
  async get (authenticationToken: string, passive = false, code?: string): Promise<GetResult | GetDeclined> {
    const body = await this.#post(PATHS.get, { authentication_token: authenticationToken, ...(code === undefined ? {} : { code }) })
    if (passive && body.authenticated === false && body.reason === 'login_required') return { declined: 'login_required' }
    if (body.authenticated !== true) throw new GatewayRefusedError('the sign-in was not completed')
    const username = body.user_identy
    if (!validUsername(username)) throw new GatewayUnavailableError('the gateway sent no valid user')
    const account = isRecord(body.user) ? accountFrom(body.user, username) : null
    return {
      username,
      nextUrl: typeof body.next_url === 'string' ? body.next_url : '/',
      account,
      ssoSession: typeof body.sso_session === 'string' && body.sso_session.length > 0 ? body.sso_session : null,
      ssoSessionEndsAt: Number.isSafeInteger(body.sso_session_ends_at) ? body.sso_session_ends_at as number : null,
      authTime: Number.isSafeInteger(body.auth_time) && (body.auth_time as number) > 0 ? body.auth_time as number : null
    }
  }

  /** `POST /sso/accounts/`: one page of the accounts this service knows, from `cursor`. */
  async accounts (cursor: string | null, limit: number): Promise<AccountsPage> {
    const body = await this.#post(PATHS.accounts, { limit: String(limit), ...(cursor === null ? {} : { cursor }) }, MAX_ACCOUNTS_PAGE_BYTES)
    const nextCursor = body.next_cursor
    if (!Array.isArray(body.accounts) || !(nextCursor === null || nextCursor === undefined || validId(nextCursor))) {
      throw new GatewayUnavailableError('the gateway sent no page of accounts')
    }
    const accounts: ResyncAccount[] = []
    let invalid = 0
    for (const entry of body.accounts as unknown[]) {
      if (!isRecord(entry) || !validUsername(entry.username)) {
        invalid++
      } else if (entry.deleted === true) {
        accounts.push({ deleted: true, userId: validId(entry.user_id) ? entry.user_id : null, username: entry.username })
      } else {
        const { deleted: _d, ...fields } = entry
        accounts.push({ deleted: false, account: accountFrom(fields, entry.username) })
      }
    }
    return { accounts, invalid, nextCursor: nextCursor ?? null }
  }

  /** `POST /sso/make_used/`: burns the request token; the sign-in is valid only if this succeeds. */
  async makeUsed (authenticationToken: string, code?: string): Promise<void> {
    const body = await this.#post(PATHS.makeUsed, { authentication_token: authenticationToken, ...(code === undefined ? {} : { code }) })
    if (body.ok !== true) throw new GatewayRefusedError('the gateway did not confirm the sign-in')
  }

  /** `POST /sso/touch/`: the SSO session is in use here. Throws GatewayRefusedError once it has ended. */
  async touch (ssoSession: string): Promise<void> {
    await this.#post(PATHS.touch, { sso_session: ssoSession })
  }

  /**
   * `POST /sso/deauthenticate/`: tells the gateway the user signed out here. With
   * `ssoSession`, only that SSO session ends; without, every session of the user.
   */
  async deauthenticate (username: string, ssoSession: string | null): Promise<void> {
    const body = await this.#post(PATHS.deauthenticate, { user_identy: username, ...(ssoSession === null ? {} : { sso_session: ssoSession }) })
    if (body.ok !== true) throw new GatewayRefusedError('the gateway did not confirm the sign-out')
  }
}
