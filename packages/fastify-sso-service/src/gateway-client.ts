import { request as undiciRequest } from 'undici'
import { MAX_USERNAME_LENGTH, PATHS } from 'fastify-sso-protocol'
import type { SsoAccount } from 'fastify-sso-protocol'
import { GatewayRefusedError, GatewayUnavailableError } from './errors.js'
import type { ResolvedOptions } from './types.js'

/** Largest gateway answer read, in bytes. */
const MAX_RESPONSE_BYTES = 64 * 1024

/** What `/sso/get/` told us, checked. */
export interface GetResult {
  username: string
  nextUrl: string
  /** Absent when the gateway is a django-sso one. */
  account: SsoAccount | null
  ssoSession: string | null
  /** When the gateway session behind this sign-in ends (ms), or null (django-sso gateways do not say). */
  ssoSessionEndsAt: number | null
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
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
  async #post (path: string, fields: Record<string, string>): Promise<Record<string, unknown>> {
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
        if (size > MAX_RESPONSE_BYTES) {
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
    return body
  }

  /** `POST /sso/obtain/`: a fresh authentication request token for `nextUrl`. */
  async obtain (nextUrl: string): Promise<string> {
    const body = await this.#post(PATHS.obtain, { next_url: nextUrl })
    if (typeof body.token !== 'string' || body.token.length === 0) throw new GatewayUnavailableError('the gateway sent no request token')
    return body.token
  }

  /** `POST /sso/get/`: who signed in with this request token. */
  async get (authenticationToken: string): Promise<GetResult> {
    const body = await this.#post(PATHS.get, { authentication_token: authenticationToken })
    if (body.authenticated !== true) throw new GatewayRefusedError('the sign-in was not completed')
    const username = body.user_identy
    if (typeof username !== 'string' || username.length === 0 || username.length > MAX_USERNAME_LENGTH) {
      throw new GatewayUnavailableError('the gateway sent no valid user')
    }
    let account: SsoAccount | null = null
    if (isRecord(body.user)) {
      const u = body.user
      account = {
        ...u,
        username,
        is_active: typeof u.is_active === 'boolean' ? u.is_active : true,
        is_staff: u.is_staff === true,
        is_superuser: u.is_superuser === true
      }
    }
    return {
      username,
      nextUrl: typeof body.next_url === 'string' ? body.next_url : '/',
      account,
      ssoSession: typeof body.sso_session === 'string' && body.sso_session.length > 0 ? body.sso_session : null,
      ssoSessionEndsAt: Number.isSafeInteger(body.sso_session_ends_at) ? body.sso_session_ends_at as number : null
    }
  }

  /** `POST /sso/make_used/`: burns the request token; the sign-in is valid only if this succeeds. */
  async makeUsed (authenticationToken: string): Promise<void> {
    const body = await this.#post(PATHS.makeUsed, { authentication_token: authenticationToken })
    if (body.ok !== true) throw new GatewayRefusedError('the gateway did not confirm the sign-in')
  }

  /** `POST /sso/deauthenticate/`: tells the gateway the user logged out here. */
  async deauthenticate (username: string, ssoSession: string | null): Promise<void> {
    await this.#post(PATHS.deauthenticate, { user_identy: username, ...(ssoSession === null ? {} : { sso_session: ssoSession }) })
  }
}
