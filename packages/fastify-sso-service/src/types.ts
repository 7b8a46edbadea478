import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { SsoAccount } from 'fastify-sso-protocol'
import type { Dispatcher } from 'undici'

/**
 * The signed-in user, as `request.ssoUser`. Apps may add fields by
 * declaration merging (`declare module 'fastify-sso-service' { interface SsoUser { ... } }`).
 */
export interface SsoUser {
  username: string
  isActive: boolean
  isStaff: boolean
  isSuperuser: boolean
  email: string | null
  displayName: string | null
  /** Every other attribute the gateway sent. */
  attributes: Record<string, unknown>
  /** The gateway SSO session this sign-in came from, or null (django-sso gateways send none). */
  ssoSession: string | null
}

/** Second argument of `onAccount`. */
export interface AccountHookContext {
  /** `'sign-in'`: from `/sso/get/` during a login; `'event'`: an `update_account` event. */
  source: 'sign-in' | 'event'
  request: FastifyRequest
  log: FastifyBaseLogger
}

/** Second argument of `onDeauthenticate`. */
export interface DeauthenticateHookContext {
  /** The SSO session that ended, or null when every session of the user ended. */
  ssoSession: string | null
  /** How many local sessions ended. */
  sessionsEnded: number
  request: FastifyRequest
  log: FastifyBaseLogger
}

export interface FastifySsoServiceOptions {
  /** The gateway's URL as the browser reaches it, e.g. `https://sso.example.com`. Required. */
  gatewayUrl: string
  /** The gateway's URL as this server reaches it. @default gatewayUrl */
  gatewayInternalUrl?: string
  /** This service's secret, issued by the gateway. Required. */
  token: string
  /**
   * The Standard Webhooks secret(s) (`whsec_...`) events are signed with; an
   * array during a rotation. Required unless `acceptUnsignedEvents`.
   */
  signingSecret?: string | string[]
  /** Accept django-sso's unsigned events carrying our `token` in the body. @default false */
  acceptUnsignedEvents?: boolean
  /** Secret(s) signing the session cookie, at least 32 characters each. Required. */
  sessionSecret: string | string[]
  /** Session cookie name. @default 'sso_service_session' */
  cookieName?: string
  /** Send the cookie only over HTTPS. @default process.env.NODE_ENV !== 'development' */
  cookieSecure?: boolean
  /** SQLite file for sessions and event bookkeeping; `':memory:'` for tests. @default 'sso-service.sqlite' */
  database?: string
  /** A session unused this long ends, in ms. @default 1800000 (30 min) */
  idleTimeout?: number
  /** A session ends this long after sign-in, in ms. @default 43200000 (12 h) */
  absoluteTimeout?: number
  /** Timeout of each call to the gateway, in ms. @default 5000 */
  requestTimeout?: number
  /** undici dispatcher for calls to the gateway (e.g. a MockAgent in tests). @default undici's global dispatcher */
  dispatcher?: Dispatcher
  /** Where to send the browser after logout: a relative path. @default '/' */
  afterLogoutUrl?: string
  /**
   * Creates or updates the app's local account. Called at each sign-in and on
   * each `update_account` event. If it throws at sign-in, the login fails with
   * an error page; on an event, the gateway gets a 500 and retries.
   * @default undefined
   */
  onAccount?: (account: SsoAccount, ctx: AccountHookContext) => void | Promise<void>
  /** Extra work after a `deauthenticate` event ended a user's sessions. @default undefined */
  onDeauthenticate?: (username: string, ctx: DeauthenticateHookContext) => void | Promise<void>
}

/** The options with every default filled in; frozen. */
export interface ResolvedOptions {
  readonly gatewayUrl: string
  readonly gatewayInternalUrl: string
  readonly token: string
  readonly signingSecrets: readonly string[]
  readonly acceptUnsignedEvents: boolean
  readonly sessionSecret: string | string[]
  readonly cookieName: string
  readonly cookieSecure: boolean
  readonly database: string
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly requestTimeout: number
  readonly dispatcher: Dispatcher | undefined
  readonly afterLogoutUrl: string
  readonly onAccount: FastifySsoServiceOptions['onAccount']
  readonly onDeauthenticate: FastifySsoServiceOptions['onDeauthenticate']
}

/** `fastify.ssoService`. */
export interface SsoServiceApi {
  /** Ends every local session of a user; returns how many ended. */
  logoutUser (username: string): number
}

/** `fastify.requireLogin`: a preHandler hook. */
export type RequireLoginHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, or null for an anonymous request. */
    ssoUser: SsoUser | null
  }
  interface FastifyInstance {
    /**
     * preHandler that lets only signed-in users through: a browser is
     * redirected to `/login/?next=<this path>`, any other client gets a 401 JSON.
     */
    requireLogin: RequireLoginHook
    /** Programmatic access to the service plugin. */
    ssoService: SsoServiceApi
  }
}
