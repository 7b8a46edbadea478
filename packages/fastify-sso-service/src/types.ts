import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { LimitStore, RedisClient, SsoAccount } from 'fastify-sso-protocol'
import type { MessageKey, PageTheme, ResolvedPageOptions } from 'fastify-sso-protocol/pages'
import type { Dispatcher } from 'undici'
import type { AccountsAdapter, PipelineStep } from './pipeline.js'

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
  /** When the user last entered their password at the gateway (ms since the epoch), or null (django-sso gateways do not say). */
  authTime: number | null
  /** The user's stable id at the gateway (never changes, unlike the username), or null (django-sso gateways send none). */
  userId: string | null
}

/** Second argument of `onAccount`. */
export interface AccountHookContext {
  /** `'sign-in'`: from `/sso/get/` during a login; `'event'`: an `update_account` event; `'resync'`: `ssoService.resync()`. */
  source: 'sign-in' | 'event' | 'resync'
  /** The request being handled; null during a resync. */
  request: FastifyRequest | null
  log: FastifyBaseLogger
}

/** Second argument of `onDeauthenticate`. */
export interface DeauthenticateHookContext {
  /** The SSO session that ended, or null when every session of the user ended. */
  ssoSession: string | null
  /** How many local sessions ended. */
  sessionsEnded: number
  /** Why the sessions ended, as the gateway said (`'logout'`, `'expired'`, `'revoked'`, ...), or null. */
  reason: string | null
  /** The user's stable id, or null (django-sso gateways send none). */
  userId: string | null
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
  /**
   * Mark the session cookie `Secure` (sent back over HTTPS only). `'auto'`: when the request
   * came over HTTPS, directly or through a proxy Fastify trusts (`trustProxy`), and not on
   * plain http, where a browser would drop a Secure cookie and every sign-in would fail.
   * @default 'auto'
   */
  cookieSecure?: boolean | 'auto'
  /** SQLite file for sessions and event bookkeeping; `':memory:'` for tests. @default 'sso-service.sqlite' */
  database?: string
  /** A session unused this long ends, in ms. @default 1800000 (30 min) */
  idleTimeout?: number
  /** A session ends this long after sign-in, in ms. @default 43200000 (12 h) */
  absoluteTimeout?: number
  /** Timeout of each call to the gateway, in ms. @default 5000 */
  requestTimeout?: number
  /**
   * While a signed-in user is active here, tell the gateway at most this often (`/sso/touch/`,
   * in the background) so the SSO session does not idle out there; an SSO session the gateway
   * says has ended ends here too. 0 turns it off (e.g. for a django-sso gateway). @default 60000
   */
  keepAliveInterval?: number
  /**
   * Sign-ins one client (by `request.ip`: set Fastify's `trustProxy` behind a proxy) may start at
   * `/login/` per `timeWindow` ms; past it, a 429 page with `Retry-After`. Each sign-in spends
   * a request token at the gateway, so one client cannot spend the service's budget there.
   * Counted in `limits`. @default { max: 30, timeWindow: 60000 }
   */
  loginRateLimit?: { max: number, timeWindow: number }
  /**
   * Where sessions (with their user and SSO-session indexes), processed event ids and known
   * accounts live. Default: the SQLite file `database`, right for one process. An app running
   * as several processes gives them one Redis: `{ redis: new Redis(url) }` (ioredis), so a
   * `deauthenticate` received by any process ends the user's sessions in all of them.
   * @default the SQLite file `database`
   */
  store?: RedisStoreOption
  /**
   * Where `loginRateLimit` counts. One process: memory is fine; several: `{ redis }` (one
   * budget per client whatever the number of processes), or a `LimitStore` of your own. When
   * it cannot answer, `/login/` answers a 503 page (fail closed).
   * @default a MemoryLimitStore (this process only)
   */
  limits?: LimitStore | RedisStoreOption
  /** undici dispatcher for calls to the gateway (e.g. a MockAgent in tests). @default undici's global dispatcher */
  dispatcher?: Dispatcher
  /**
   * Where to send the browser after any sign-out: a relative path. The built-in
   * page says what happened (it is told the scope in `?scope=`).
   * @default '/sso/signed-out/'
   */
  afterLogoutUrl?: string
  /**
   * Your own eta templates (file paths) replacing built-in pages: `logout` (the three ways
   * out), `signedOut`, `message` (sign-in errors and every other page). A template can use the
   * kit's layout and partials (`<% layout('@layout') %>`); see the README, "Pages". @default {}
   */
  templates?: Partial<Record<ServicePageName, string>>
  /** Show every page in this locale (`'en'`, `'ru'` or one you add in `messages`). @default null (from `Accept-Language`) */
  locale?: string | null
  /** Messages to add or override, by locale (see the README, "Pages"). @default {} */
  messages?: Record<string, Partial<Record<MessageKey, string>>>
  /** Branding: `name` and `logoUrl` in the page header, `css` appended to the stylesheet (custom properties). @default {} */
  theme?: PageTheme
  /**
   * Set the app's not-found handler: a page for browsers (`Accept: text/html`), `{ error }` JSON
   * otherwise. Off by default: a plugin does not change the host app's not-found handler. @default false
   */
  notFoundPage?: boolean
  /**
   * The app's local accounts, used by the default pipeline steps `find-account`,
   * `create-account` and `update-account`, and by renames (`rename`) and deletions (`remove`).
   * @default undefined (no local accounts; `onAccount` still runs)
   */
  accounts?: AccountsAdapter<any>
  /**
   * Changes the pipeline an incoming account goes through: receives the default
   * steps (a fresh array) and returns the steps to run, in order. Called once, at register.
   * @default undefined (the default steps)
   */
  pipeline?: (steps: PipelineStep[]) => PipelineStep[]
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

/** The pages a user may replace with their own eta template. */
export type ServicePageName = 'logout' | 'signedOut' | 'message'

/** A Redis to keep state in (the `store` and `limits` options). */
export interface RedisStoreOption {
  /** An ioredis client (`new Redis(url)`), or anything with its `eval`. The app owns it (and closes it). */
  redis: RedisClient
  /**
   * Prefix of every key written. Each service app needs its own (two apps sharing one would
   * share users' sessions): the default is derived from the service's `token`, so it is.
   * @default 'sso:service:<12 hex characters of the token's SHA-256>:' (`limits`: the same + 'limits:')
   */
  prefix?: string
  /** A Redis call slower than this fails (503), in ms. @default 2000 */
  timeout?: number
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
  readonly cookieSecure: boolean | 'auto'
  readonly database: string
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly requestTimeout: number
  readonly keepAliveInterval: number
  readonly loginRateLimit: Readonly<{ max: number, timeWindow: number }>
  readonly store: Readonly<RedisStoreOption> | undefined
  readonly limits: LimitStore
  readonly dispatcher: Dispatcher | undefined
  readonly afterLogoutUrl: string
  readonly pages: ResolvedPageOptions
  readonly notFoundPage: boolean
  readonly accounts: AccountsAdapter<any> | undefined
  readonly pipeline: FastifySsoServiceOptions['pipeline']
  readonly onAccount: FastifySsoServiceOptions['onAccount']
  readonly onDeauthenticate: FastifySsoServiceOptions['onDeauthenticate']
}

/** Bounds of one `ssoService.resync()`. */
export interface ResyncOptions {
  /** Accounts asked for per page (1-1000). @default 100 */
  pageSize?: number
  /** Pages read at most; the summary says `complete: false` if more were left. @default 1000 */
  maxPages?: number
}

/** What `ssoService.resync()` did. */
export interface ResyncSummary {
  /** Active accounts run through the pipeline. */
  updated: number
  /** Disabled accounts (`is_active: false`): run through the pipeline, their sessions ended. */
  disabled: number
  /** Deleted accounts: sessions ended, `accounts.remove` called. */
  deleted: number
  /** Accounts a pipeline step refused (`ctx.refuse`). */
  refused: number
  /** Accounts whose pipeline or adapter threw (logged). */
  failed: number
  /** Pages read. */
  pages: number
  /** False when `maxPages` stopped the resync before the last page. */
  complete: boolean
}

/** `fastify.ssoService`. */
export interface SsoServiceApi {
  /** Ends every local session of a user; resolves to how many ended (the session store is async). */
  logoutUser (username: string): Promise<number>
  /**
   * Asks the gateway (`POST /sso/accounts/`, page by page) for the current state of
   * the accounts this service knows and reconciles: each account goes through the
   * pipeline (source `'resync'`), disabled and deleted accounts lose their sessions,
   * deleted ones are passed to `accounts.remove`. One resync runs at a time (a second
   * call while one runs gets the same promise). Rejects with a plugin error if the
   * gateway is unreachable or refuses.
   */
  resync (options?: ResyncOptions): Promise<ResyncSummary>
}

/** `fastify.requireLogin`: a preHandler hook. */
export type RequireLoginHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

/** `fastify.requireFreshLogin(maxAgeMs)`: makes a preHandler hook. */
export type RequireFreshLogin = (maxAgeMs: number) => RequireLoginHook

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, or null for an anonymous request. */
    ssoUser: SsoUser | null
    /**
     * True when this browser session already made a passive check
     * (`/login/?prompt=none`) that came back anonymous: use it to avoid loops.
     */
    ssoPassiveChecked: boolean
  }
  interface FastifyInstance {
    /**
     * preHandler that lets only signed-in users through: a browser is
     * redirected to `/login/?next=<this path>`, any other client gets a 401 JSON.
     */
    requireLogin: RequireLoginHook
    /**
     * Makes a preHandler that lets through only users who entered their password
     * at most `maxAgeMs` ago: others are sent to `/login/?prompt=login&next=<this path>`
     * (browser) or get a 401 JSON error.
     */
    requireFreshLogin: RequireFreshLogin
    /** Programmatic access to the service plugin. */
    ssoService: SsoServiceApi
  }
}
