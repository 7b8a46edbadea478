import type { Dispatcher } from 'undici'
import { errors } from './errors.js'
import { RETRY_SCHEDULE } from './outbox/dispatcher.js'
import { MAX_PASSWORD_LENGTH, OWASP_MINIMUM, type HashParameters } from './passwords.js'
import type { GatewayStore } from './store/store.js'
import type { AccessCheck } from './types.js'
import { PAGE_NAMES, type PageName } from './pages.js'
import {
  FASTIFY_REGISTER_KEYS, isLimitStore, isRedisClient, MemoryLimitStore, RedisLimitStore, showOption, unknownOption, type LimitStore, type RedisClient
} from 'fastify-sso-protocol'
import { resolvePageOptions, type MessageKey, type PageOptions, type PageTheme, type ResolvedPageOptions } from 'fastify-sso-protocol/pages'

/** Every method of the store contract, per aggregate: what the `store` option is checked for. */
const STORE_METHODS: Record<string, readonly string[]> = {
  users: ['create', 'byId', 'byUsername', 'list', 'update', 'delete'],
  groups: ['create', 'delete', 'list', 'setMember', 'ofUser', 'members'],
  services: ['create', 'byId', 'byName', 'byTokenHash', 'list', 'update', 'hasUser', 'users'],
  tokens: ['create', 'get', 'authenticate', 'decline', 'spendDeclined', 'consume', 'burn', 'prune'],
  ssoSessions: ['services'],
  sessions: ['get', 'set', 'destroy', 'destroyByUser', 'destroyBySsoSession', 'listByUser', 'touch', 'takeExpired'],
  outbox: ['enqueue', 'claim', 'expedite', 'expediteService', 'complete', 'fail', 'release', 'list', 'prune', 'replay', 'status'],
  audit: ['append', 'list', 'prune']
}

/** The first method of the store contract `store` lacks (`tokens.consume`), or null. */
function missingStoreMethod (store: object): string | null {
  if (typeof (store as { close?: unknown }).close !== 'function') return 'close'
  for (const [aggregate, methods] of Object.entries(STORE_METHODS)) {
    const part = (store as Record<string, unknown>)[aggregate]
    for (const method of methods) {
      if (typeof part !== 'object' || part === null || typeof (part as Record<string, unknown>)[method] !== 'function') return `${aggregate}.${method}`
    }
  }
  return null
}

/** Who may use the admin console: users with a flag set, or members of a group. */
export type AdminRole = { flag: 'isSuperuser' | 'isStaff' } | { group: string }

/** The admin console (`admin` option). */
export interface AdminConsoleOptions {
  /** Where the console is mounted. @default '/admin' */
  prefix?: string
  /** Who may use it. @default { flag: 'isSuperuser' } */
  role?: AdminRole
  /** A change needs the password entered within this long, in ms (step-up). @default 600_000 (10 min) */
  stepUp?: number
}

/** A request budget: at most `max` requests per `timeWindow` milliseconds. */
export interface RateLimit {
  max: number
  timeWindow: number
}

/** Options of `fastify.register(fastifySsoGateway, options)`. */
export interface FastifySsoGatewayOptions {
  /**
   * Secret(s) signing the session cookie, each at least 32 characters; the first signs, all
   * verify (rotation). Without it the gateway generates one on first start, keeps it in its
   * database and logs a warning; with `NODE_ENV=production` it refuses to start without it.
   * @default a generated secret kept in the database (not in production)
   */
  sessionSecret?: string | string[]
  /**
   * Where users, services, tokens, sessions and the outbox live: a SQLite file path (`':memory:'`
   * for tests), or a `postgres://` / `postgresql://` URL, which opens a `PostgresGatewayStore`
   * (several gateway processes share it; migrations run at start; `busyTimeout` bounds the wait
   * for a connection and each statement). @default 'sso-gateway.sqlite'
   */
  database?: string
  /** A store to use instead of `database`: `PostgresGatewayStore` with pool settings, `MemoryGatewayStore`, or your own (docs/writing-a-store.md). @default a SqliteGatewayStore on `database` (a PostgresGatewayStore for a postgres:// URL) */
  store?: GatewayStore
  /** How long a write waits for another writer before answering 503, in ms. @default 5000 */
  busyTimeout?: number
  /** Name of the gateway session cookie. @default 'sso_gateway_session' */
  cookieName?: string
  /**
   * Mark the session cookie `Secure` (sent back over HTTPS only). `'auto'`: when the request
   * came over HTTPS, directly or through a proxy Fastify trusts (`trustProxy`), and not on
   * plain http, where a browser would drop a Secure cookie and every form would fail.
   * @default 'auto'
   */
  cookieSecure?: boolean | 'auto'
  /** A gateway session unused this long ends, in ms. @default 1_800_000 (30 min) */
  idleTimeout?: number
  /** A gateway session ends this long after sign-in, in ms. @default 43_200_000 (12 h) */
  absoluteTimeout?: number
  /** Life of an authentication request before the user signs in, in ms. @default 600_000 (10 min) */
  pendingTokenTtl?: number
  /** Life of an authenticated request before the service redeems it, in ms. @default 120_000 (2 min) */
  authenticatedTokenTtl?: number
  /** argon2id parameters; below OWASP's minimum (m=19456 KiB, t=2, p=1) is refused. @default OWASP minimum */
  passwordHash?: Partial<HashParameters>
  /** Total time allowed for one event delivery attempt, in ms. @default 10_000 */
  eventTimeout?: number
  /** How long a sign-in to a django-sso service waits for it to take its `update_account` event, in ms (fastify-sso services get theirs in the background). @default 3000 */
  inlineEventTimeout?: number
  /** How often the outbox looks for due events, in ms. @default 1000 */
  outboxInterval?: number
  /**
   * Delays between delivery attempts of an event, in ms; after the last one it is
   * dead-lettered. Each delay gets ±20 % jitter; a longer `Retry-After` wins.
   * @default RETRY_SCHEDULE (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: about three days)
   */
  retrySchedule?: readonly number[]
  /** undici dispatcher for event deliveries (tests pass a MockAgent). @default a per-origin pooled Agent */
  dispatcher?: Dispatcher
  /** Heading of the gateway's pages. @default 'Single sign-on' */
  title?: string
  /**
   * Your own eta templates (file paths) replacing built-in pages: `login`, `message`, `welcome`,
   * `sessions` (see the README, "Pages"). A template can use the kit's layout and partials
   * (`<% layout('@layout') %>`). @default {}
   */
  templates?: Partial<Record<PageName, string>>
  /** Show every page in this locale (`'en'`, `'ru'` or one you add in `messages`). @default null (from `Accept-Language`) */
  locale?: string | null
  /** Messages to add or override, by locale (see the README, "Pages"). @default {} */
  messages?: Record<string, Partial<Record<MessageKey, string>>>
  /** Branding: `logoUrl` beside the title, `css` appended to the stylesheet (custom properties). The name is `title`. @default {} */
  theme?: Omit<PageTheme, 'name'>
  /**
   * Set the app's not-found handler: a page for browsers (`Accept: text/html`), `{ error }` JSON
   * otherwise. Off by default: a plugin does not change the host app's not-found handler. @default false
   */
  notFoundPage?: boolean
  /**
   * Your own access rule, asked after a service's stored rule (listed users and groups)
   * allowed the user: return false to refuse. @default none
   */
  accessCheck?: AccessCheck
  /** How often expired sessions and tokens are swept (expired SSO sessions are then ended at the services), in ms. @default 60_000 */
  housekeepingInterval?: number
  /**
   * Sign-in budget per service: at most `max` sign-ins completed through a service's request
   * tokens per `timeWindow`; past it, `/sso/obtain/` answers 429. Tokens nobody uses (anonymous
   * visits to the service's `/login/`) do not spend it; raw `/sso/obtain/` calls are capped at
   * 10 × `max` per window. Counted in `limits` (per process unless shared). @default { max: 3000, timeWindow: 60_000 }
   */
  obtainRateLimit?: RateLimit
  /** Shortest password `createUser`, `updateUser` and `changePassword` accept (NIST SP 800-63B-4: 15 for a password that is the only factor; never below 8). @default 15 */
  minPasswordLength?: number
  /**
   * Key(s) that encrypt each service's signing secret and django-sso token in the store
   * (AES-256-GCM), e.g. from the environment: strings of at least 32 characters; the first
   * encrypts, all decrypt (rotation). Without it they are stored as given. @default none
   */
  secretsKey?: string | string[]
  /** Password POST budget per client IP. @default { max: 30, timeWindow: 60_000 } */
  loginRateLimit?: RateLimit
  /**
   * Where the sign-in throttle (`loginRateLimit`), the per-account failure window (lockout)
   * and the obtain budget (`obtainRateLimit`) count. One gateway process: memory is fine.
   * Several processes: give them one Redis (`{ redis: new Redis(url) }`, an ioredis client),
   * or each process would allow the full budget. A `LimitStore` of your own works too. When
   * the store cannot answer, sign-in attempts and `/sso/obtain/` are refused with 503 (fail closed).
   * @default a MemoryLimitStore (this process only)
   */
  limits?: LimitStore | RedisLimitsOption
  /**
   * The admin console: server-rendered pages for users, groups, services, event delivery,
   * sessions and the audit log, for signed-in admins with a fresh password. `true` for the
   * defaults. @default false (off)
   */
  admin?: boolean | AdminConsoleOptions
}

/** The `limits` option's Redis form. */
export interface RedisLimitsOption {
  /** An ioredis client (or anything with its `eval`). */
  redis: RedisClient
  /** Prefix of the keys written. @default 'sso:limits:' */
  prefix?: string
  /** A Redis call slower than this fails (the attempt is refused), in ms. @default 2000 */
  timeout?: number
}

/** The options after checking, with every default filled in. */
export interface ResolvedGatewayOptions {
  /** Undefined: generate one and keep it in the store (never in production). */
  readonly sessionSecret: string | string[] | undefined
  readonly database: string
  readonly store: GatewayStore | undefined
  readonly busyTimeout: number
  readonly cookieName: string
  readonly cookieSecure: boolean | 'auto'
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly pendingTokenTtl: number
  readonly authenticatedTokenTtl: number
  readonly passwordHash: Readonly<HashParameters>
  readonly eventTimeout: number
  readonly inlineEventTimeout: number
  readonly outboxInterval: number
  readonly retrySchedule: readonly number[]
  readonly dispatcher: Dispatcher | undefined
  readonly title: string
  readonly pages: ResolvedPageOptions
  readonly notFoundPage: boolean
  readonly accessCheck: AccessCheck | undefined
  readonly housekeepingInterval: number
  readonly obtainRateLimit: Readonly<RateLimit>
  readonly minPasswordLength: number
  readonly secretsKey: readonly string[]
  readonly loginRateLimit: Readonly<RateLimit>
  readonly limits: LimitStore
  readonly admin: Readonly<{ prefix: string, role: AdminRole, stepUp: number }> | null
}

function schedule (v: unknown): readonly number[] {
  if (v === undefined) return RETRY_SCHEDULE
  if (!Array.isArray(v) || v.length === 0 || v.length > 100 ||
    !v.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0 && d <= 7 * 86_400_000)) {
    fail('retrySchedule', 'must be a list of 1 to 100 delays, each a whole number of milliseconds up to a week', v)
  }
  return Object.freeze([...v as number[]])
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/

/** Whether the `database` option names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl (database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database)
}

/** The URL with its password (in the user part or as a `password` parameter) masked, for messages. */
export function redactUrl (url: string): string {
  const masked = url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^/]*@/i, '$1***@')
  return masked.replace(/([?&]password=)[^&]*/gi, '$1***')
}

function checkPostgresUrl (database: string): void {
  let url: URL | undefined
  try {
    url = new URL(database)
  } catch {}
  if (url === undefined || url.hostname === '' || url.pathname.length < 2) {
    fail('database', 'must be a PostgreSQL URL like postgres://user:password@host:5432/database', redactUrl(database))
  }
}

function fail (name: string, detail: string, value: unknown): never {
  throw new errors.INVALID_OPTION(name, `${detail} (got ${showOption(value, /secret/i.test(name))})`)
}

/** Every option `register` takes (Fastify's own `prefix`, `logLevel`, `logSerializers` are allowed too). */
export const OPTION_NAMES: readonly string[] = Object.freeze([
  'sessionSecret', 'database', 'store', 'busyTimeout', 'cookieName', 'cookieSecure', 'idleTimeout', 'absoluteTimeout',
  'pendingTokenTtl', 'authenticatedTokenTtl', 'passwordHash', 'eventTimeout', 'inlineEventTimeout', 'outboxInterval',
  'retrySchedule', 'dispatcher', 'title', 'templates', 'locale', 'messages', 'theme', 'notFoundPage', 'accessCheck', 'housekeepingInterval', 'obtainRateLimit', 'loginRateLimit',
  'minPasswordLength', 'secretsKey', 'limits', 'admin'
])

function noUnknown (name: string, value: object, known: readonly string[]): void {
  const unknown = unknownOption(value, known, name === '' ? FASTIFY_REGISTER_KEYS : [])
  if (unknown !== null) throw new errors.INVALID_OPTION(name === '' ? unknown.name : `${name}.${unknown.name}`, unknown.detail)
}

function duration (options: Record<string, unknown>, name: string, def: number, min = 1000): number {
  const v = options[name]
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 366 * 86_400_000) {
    fail(name, `must be a whole number of milliseconds from ${min} up to a year`, v)
  }
  return v
}

function rateLimit (options: Record<string, unknown>, name: string, def: RateLimit): RateLimit {
  const v = options[name]
  if (v === undefined) return def
  if (typeof v !== 'object' || v === null) fail(name, 'must be { max, timeWindow }', v)
  noUnknown(name, v, ['max', 'timeWindow'])
  const { max, timeWindow } = v as Record<string, unknown>
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) fail(`${name}.max`, 'must be a positive whole number', max)
  if (typeof timeWindow !== 'number' || !Number.isInteger(timeWindow) || timeWindow < 1) fail(`${name}.timeWindow`, 'must be a positive number of milliseconds', timeWindow)
  return Object.freeze({ max, timeWindow })
}

function minPasswordLength (v: unknown): number {
  if (v === undefined) return 15
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 8 || v > MAX_PASSWORD_LENGTH) {
    fail('minPasswordLength', `must be a whole number from 8 to ${MAX_PASSWORD_LENGTH}`, v)
  }
  return v
}

function adminOption (v: unknown): ResolvedGatewayOptions['admin'] {
  if (v === undefined || v === false) return null
  const o = v === true ? {} : v
  if (typeof o !== 'object' || o === null || Array.isArray(o)) fail('admin', 'must be true, false or { prefix, role, stepUp }', v)
  noUnknown('admin', o, ['prefix', 'role', 'stepUp'])
  const { prefix = '/admin', role = { flag: 'isSuperuser' }, stepUp } = o as Record<string, unknown>
  if (typeof prefix !== 'string' || !/^\/[a-z0-9][a-z0-9/_-]{0,99}$/i.test(prefix) || prefix.endsWith('/') || prefix.includes('//') || /^\/(sso|login|logout|welcome|sessions)(\/|$)/.test(prefix)) {
    fail('admin.prefix', 'must be a path like /admin (letters, digits, - _ /; no trailing slash; not a gateway path)', prefix)
  }
  const r = role as Record<string, unknown>
  const flag = typeof r === 'object' && r !== null && Object.keys(r).length === 1 && (r.flag === 'isSuperuser' || r.flag === 'isStaff')
  const group = typeof r === 'object' && r !== null && Object.keys(r).length === 1 && typeof r.group === 'string' && r.group.length > 0 && r.group.length <= 100
  if (!flag && !group) fail('admin.role', 'must be { flag: "isSuperuser" | "isStaff" } or { group: "<name>" }', role)
  const stepUpMs = duration({ 'admin.stepUp': stepUp }, 'admin.stepUp', 600_000, 10_000)
  if (stepUpMs > 86_400_000) fail('admin.stepUp', 'must be at most a day', stepUp)
  return Object.freeze({ prefix, role: Object.freeze({ ...r }) as AdminRole, stepUp: stepUpMs })
}

function secretsKeys (v: unknown): readonly string[] {
  if (v === undefined) return Object.freeze([])
  const keys = Array.isArray(v) ? v : [v]
  if (keys.length === 0 || !keys.every((k) => typeof k === 'string' && k.length >= 32)) {
    fail('secretsKey', 'must be a string of at least 32 characters, or a non-empty array of them', v)
  }
  return Object.freeze([...keys as string[]])
}

function limits (v: unknown): LimitStore {
  if (v === undefined) return new MemoryLimitStore()
  if (isLimitStore(v)) return v
  if (typeof v !== 'object' || v === null) fail('limits', 'must be a LimitStore or { redis, prefix?, timeout? }', v)
  noUnknown('limits', v, ['redis', 'prefix', 'timeout'])
  const { redis, prefix, timeout } = v as Record<string, unknown>
  if (!isRedisClient(redis)) fail('limits.redis', 'must be a Redis client (ioredis: new Redis(url))', typeof redis)
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length > 100)) fail('limits.prefix', 'must be a string of at most 100 characters', prefix)
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > 60_000)) {
    fail('limits.timeout', 'must be a whole number of milliseconds from 1 to 60000', timeout)
  }
  return new RedisLimitStore({ redis, ...(prefix === undefined ? {} : { prefix: prefix as string }), ...(timeout === undefined ? {} : { timeout: timeout as number }) })
}

/** Checks every option once, at register, and returns them frozen with defaults filled in. */
export function resolveOptions (input: unknown): ResolvedGatewayOptions {
  if (typeof input !== 'object' || input === null) fail('options', 'must be an object', input)
  const o = input as Record<string, unknown>
  noUnknown('', o, OPTION_NAMES)

  const secret = o.sessionSecret
  if (secret === undefined) {
    if (process.env.NODE_ENV === 'production') {
      fail('sessionSecret', 'is required when NODE_ENV=production: a string of at least 32 random characters (the generated first-try secret is for development only)', secret)
    }
  } else {
    const secrets = Array.isArray(secret) ? secret : [secret]
    if (secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s.length >= 32)) {
      fail('sessionSecret', 'must be a string of at least 32 characters, or a non-empty array of them', secret)
    }
  }

  const database = o.database ?? 'sso-gateway.sqlite'
  if (typeof database !== 'string' || database.length === 0) fail('database', 'must be a file path, ":memory:" or a postgres:// URL', database)
  if (isPostgresUrl(database)) checkPostgresUrl(database)

  const store = o.store
  if (store !== undefined) {
    if (typeof store !== 'object' || store === null) fail('store', 'must implement the GatewayStore interface', typeof store)
    const missing = missingStoreMethod(store as object)
    if (missing !== null) fail('store', `must implement the GatewayStore interface (no ${missing})`, typeof store)
  }

  const cookieName = o.cookieName ?? 'sso_gateway_session'
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) fail('cookieName', 'must be a cookie name token of 1 to 64 characters', cookieName)

  const cookieSecure = o.cookieSecure ?? 'auto'
  if (typeof cookieSecure !== 'boolean' && cookieSecure !== 'auto') fail('cookieSecure', 'must be true, false or "auto"', cookieSecure)

  const idleTimeout = duration(o, 'idleTimeout', 30 * 60_000)
  const absoluteTimeout = duration(o, 'absoluteTimeout', 12 * 3_600_000)
  if (absoluteTimeout < idleTimeout) fail('absoluteTimeout', `must not be shorter than idleTimeout (${idleTimeout})`, absoluteTimeout)

  const hashIn = o.passwordHash ?? {}
  if (typeof hashIn !== 'object' || hashIn === null) fail('passwordHash', 'must be { memoryCost, timeCost, parallelism }', hashIn)
  noUnknown('passwordHash', hashIn, Object.keys(OWASP_MINIMUM))
  const passwordHash = { ...OWASP_MINIMUM, ...(hashIn as Partial<HashParameters>) }
  for (const key of ['memoryCost', 'timeCost', 'parallelism'] as const) {
    const v = passwordHash[key]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < OWASP_MINIMUM[key]) {
      fail(`passwordHash.${key}`, `must be a whole number of at least ${OWASP_MINIMUM[key]} (OWASP minimum for argon2id)`, v)
    }
  }

  const dispatcher = o.dispatcher
  if (dispatcher !== undefined && (typeof dispatcher !== 'object' || dispatcher === null || typeof (dispatcher as Dispatcher).dispatch !== 'function')) {
    fail('dispatcher', 'must be an undici Dispatcher', typeof dispatcher)
  }

  const title = o.title ?? 'Single sign-on'
  if (typeof title !== 'string' || title.length === 0 || title.length > 100) fail('title', 'must be a string of 1 to 100 characters', title)

  const templatesIn = o.templates ?? {}
  if (typeof templatesIn !== 'object' || templatesIn === null) fail('templates', 'must be an object of file paths', templatesIn)
  noUnknown('templates', templatesIn, PAGE_NAMES)
  const themeIn = o.theme ?? {}
  if (typeof themeIn !== 'object' || themeIn === null) fail('theme', 'must be an object { logoUrl?, css? }', themeIn)
  noUnknown('theme', themeIn, ['logoUrl', 'css'])
  const pages = resolvePageOptions({
    templates: templatesIn as Record<string, string>,
    locale: o.locale as string | null | undefined,
    messages: o.messages as PageOptions['messages'],
    theme: { ...themeIn as PageTheme, name: title }
  }, PAGE_NAMES, fail)
  const notFoundPage = o.notFoundPage ?? false
  if (typeof notFoundPage !== 'boolean') fail('notFoundPage', 'must be true or false', notFoundPage)

  return Object.freeze({
    sessionSecret: secret as string | string[] | undefined,
    database,
    store: store as GatewayStore | undefined,
    busyTimeout: duration(o, 'busyTimeout', 5000, 0),
    cookieName,
    cookieSecure,
    idleTimeout,
    absoluteTimeout,
    pendingTokenTtl: duration(o, 'pendingTokenTtl', 10 * 60_000),
    authenticatedTokenTtl: duration(o, 'authenticatedTokenTtl', 2 * 60_000),
    passwordHash: Object.freeze(passwordHash),
    eventTimeout: duration(o, 'eventTimeout', 10_000, 100),
    inlineEventTimeout: duration(o, 'inlineEventTimeout', 3000, 0),
    outboxInterval: duration(o, 'outboxInterval', 1000, 10),
    retrySchedule: schedule(o.retrySchedule),
    dispatcher: dispatcher as Dispatcher | undefined,
    title,
    pages,
    notFoundPage,
    accessCheck: o.accessCheck === undefined ? undefined : typeof o.accessCheck === 'function' ? o.accessCheck as AccessCheck
      : fail('accessCheck', 'must be a function (user, service) => boolean', typeof o.accessCheck),
    housekeepingInterval: duration(o, 'housekeepingInterval', 60_000, 100),
    obtainRateLimit: rateLimit(o, 'obtainRateLimit', { max: 3000, timeWindow: 60_000 }),
    minPasswordLength: minPasswordLength(o.minPasswordLength),
    secretsKey: secretsKeys(o.secretsKey),
    loginRateLimit: rateLimit(o, 'loginRateLimit', { max: 30, timeWindow: 60_000 }),
    limits: limits(o.limits),
    admin: adminOption(o.admin)
  })
}
