import { createHash } from 'node:crypto'
import {
  checkNextUrl, FASTIFY_REGISTER_KEYS, isLimitStore, isRedisClient, isSigningSecret, MAX_TOKEN_LENGTH, MemoryLimitStore, RedisLimitStore,
  showOption, unknownOption, type LimitStore
} from 'fastify-sso-protocol'
import { resolvePageOptions, type PageOptions } from 'fastify-sso-protocol/pages'
import { InvalidOptionError } from './errors.js'
import { defaultSteps } from './pipeline.js'
import type { AccountsAdapter, PipelineStep } from './pipeline.js'
import type { FastifySsoServiceOptions, RedisStoreOption, ResolvedOptions } from './types.js'

/** The pages a user may replace (`templates`). */
export const SERVICE_PAGE_NAMES = ['logout', 'signedOut', 'message'] as const

/** @default values of the options. */
export const DEFAULTS = {
  cookieName: 'sso_service_session',
  database: 'sso-service.sqlite',
  idleTimeout: 30 * 60_000,
  absoluteTimeout: 12 * 60 * 60_000,
  requestTimeout: 5000,
  afterLogoutUrl: '/sso/signed-out/'
} as const

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/

/** Every option `register` takes (Fastify's own `prefix`, `logLevel`, `logSerializers` are allowed too). */
export const OPTION_NAMES: readonly string[] = Object.freeze([
  'gatewayUrl', 'gatewayInternalUrl', 'token', 'signingSecret', 'acceptUnsignedEvents', 'sessionSecret', 'cookieName',
  'cookieSecure', 'database', 'idleTimeout', 'absoluteTimeout', 'requestTimeout', 'keepAliveInterval', 'dispatcher',
  'afterLogoutUrl', 'templates', 'locale', 'messages', 'theme', 'notFoundPage', 'accounts', 'pipeline', 'onAccount', 'onDeauthenticate', 'loginRateLimit', 'store', 'limits'
])

/** A secret (token, signing or session secret) is never shown, whatever its type. */
function invalid (name: string, expected: string, value: unknown, secret = false): never {
  throw new InvalidOptionError(name, `expected ${expected}, got ${showOption(value, secret)}`)
}

function url (name: string, value: unknown): string {
  let parsed: URL
  try {
    parsed = new URL(String(value))
  } catch {
    invalid(name, 'an http(s) URL', value)
  }
  if (typeof value !== 'string' || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
    parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') {
    invalid(name, 'an http(s) URL without credentials, query or fragment', value)
  }
  return parsed.origin + parsed.pathname.replace(/\/+$/, '')
}

function duration (name: string, value: unknown, def: number): number {
  if (value === undefined) return def
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) invalid(name, 'a positive integer (milliseconds)', value)
  return value
}

function optionalFunction<T> (name: string, value: T): T {
  if (value !== undefined && typeof value !== 'function') invalid(name, 'a function', value)
  return value
}

function accountsAdapter (value: unknown): AccountsAdapter<any> | undefined {
  if (value === undefined) return undefined
  const expected = 'an object with find, create and update functions (rename and remove optional)'
  if (value === null || typeof value !== 'object') invalid('accounts', expected, value)
  const a = value as Record<string, unknown>
  for (const name of ['find', 'create', 'update']) {
    if (typeof a[name] !== 'function') invalid(`accounts.${name}`, 'a function', a[name])
  }
  for (const name of ['rename', 'remove']) {
    if (a[name] !== undefined && typeof a[name] !== 'function') invalid(`accounts.${name}`, 'a function', a[name])
  }
  return value as AccountsAdapter<any>
}

/** The `{ redis, prefix?, timeout? }` form of `store` and `limits`, checked, with the prefix filled in. */
function redisOption (name: string, value: unknown, prefix: string): Readonly<Required<RedisStoreOption>> {
  const expected = '{ redis: an ioredis client, prefix?: string, timeout?: milliseconds }'
  if (value === null || typeof value !== 'object') invalid(name, expected, value)
  const unknown = unknownOption(value as Record<string, unknown>, ['redis', 'prefix', 'timeout'], [])
  if (unknown !== null) throw new InvalidOptionError(`${name}.${unknown.name}`, unknown.detail)
  const o = value as Record<string, unknown>
  if (!isRedisClient(o.redis)) invalid(`${name}.redis`, 'a Redis client (ioredis: new Redis(url))', typeof o.redis)
  if (o.prefix !== undefined && (typeof o.prefix !== 'string' || o.prefix.length > 100)) invalid(`${name}.prefix`, 'a string of at most 100 characters', o.prefix)
  if (o.timeout !== undefined && (typeof o.timeout !== 'number' || !Number.isSafeInteger(o.timeout) || o.timeout < 1 || o.timeout > 60_000)) {
    invalid(`${name}.timeout`, 'an integer from 1 to 60000 (milliseconds)', o.timeout)
  }
  return Object.freeze({ redis: o.redis, prefix: (o.prefix as string | undefined) ?? prefix, timeout: (o.timeout as number | undefined) ?? 2000 })
}

function limits (value: unknown, prefix: string): LimitStore {
  if (value === undefined) return new MemoryLimitStore()
  if (isLimitStore(value)) return value
  return new RedisLimitStore(redisOption('limits', value, `${prefix}limits:`))
}

/** Builds the pipeline: the default steps, changed by the `pipeline` option; checks the result. */
export function buildPipeline (options: ResolvedOptions): readonly PipelineStep[] {
  const defaults = defaultSteps(options)
  if (options.pipeline === undefined) return Object.freeze(defaults)
  const steps: unknown = options.pipeline(defaults)
  if (!Array.isArray(steps)) invalid('pipeline', 'a function returning an array of steps', steps)
  const names = new Set<string>()
  for (const step of steps as unknown[]) {
    const s = step as Partial<PipelineStep> | null
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || s.name.length === 0 || typeof s.run !== 'function') {
      invalid('pipeline', 'steps of the form { name: string, run: function }', step)
    }
    if (names.has(s.name)) invalid('pipeline', 'steps with unique names', s.name)
    names.add(s.name)
  }
  return Object.freeze([...steps as PipelineStep[]])
}

/** Checks the options given to `register` and returns them with defaults, frozen. */
export function resolveOptions (options: FastifySsoServiceOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') invalid('options', 'an object', options)
  const o = options as unknown as Record<string, unknown>
  const unknown = unknownOption(o, OPTION_NAMES, FASTIFY_REGISTER_KEYS)
  if (unknown !== null) throw new InvalidOptionError(unknown.name, unknown.detail)

  const gatewayUrl = url('gatewayUrl', o.gatewayUrl)
  const gatewayInternalUrl = o.gatewayInternalUrl === undefined ? gatewayUrl : url('gatewayInternalUrl', o.gatewayInternalUrl)

  if (typeof o.token !== 'string' || o.token.length === 0 || o.token.length > MAX_TOKEN_LENGTH) {
    invalid('token', `a non-empty string of at most ${MAX_TOKEN_LENGTH} characters`, o.token, true)
  }

  if (o.acceptUnsignedEvents !== undefined && typeof o.acceptUnsignedEvents !== 'boolean') invalid('acceptUnsignedEvents', 'a boolean', o.acceptUnsignedEvents)
  const acceptUnsignedEvents = o.acceptUnsignedEvents === true

  let signingSecrets: string[] = []
  if (o.signingSecret !== undefined) {
    signingSecrets = Array.isArray(o.signingSecret) ? [...o.signingSecret as unknown[]] as string[] : [o.signingSecret as string]
    if (signingSecrets.length === 0 || !signingSecrets.every(isSigningSecret)) {
      invalid('signingSecret', 'a Standard Webhooks secret "whsec_<base64 of 24+ bytes>" or a non-empty array of them', o.signingSecret, true)
    }
  } else if (!acceptUnsignedEvents) {
    invalid('signingSecret', 'a Standard Webhooks secret "whsec_..." (or acceptUnsignedEvents: true for a django-sso gateway)', o.signingSecret)
  }

  const sessionSecret = o.sessionSecret
  const secretOk = (s: unknown): boolean => typeof s === 'string' && s.length >= 32
  if (Array.isArray(sessionSecret) ? sessionSecret.length === 0 || !sessionSecret.every(secretOk) : !secretOk(sessionSecret)) {
    invalid('sessionSecret', 'a string of at least 32 characters or a non-empty array of them', sessionSecret, true)
  }

  const cookieName = o.cookieName ?? DEFAULTS.cookieName
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) invalid('cookieName', 'a cookie name (1-64 token characters)', cookieName)

  const cookieSecure = o.cookieSecure ?? 'auto'
  if (typeof cookieSecure !== 'boolean' && cookieSecure !== 'auto') invalid('cookieSecure', 'true, false or "auto"', cookieSecure)

  const database = o.database ?? DEFAULTS.database
  if (typeof database !== 'string' || database.length === 0) invalid('database', 'a file path or ":memory:"', database)

  const idleTimeout = duration('idleTimeout', o.idleTimeout, DEFAULTS.idleTimeout)
  const absoluteTimeout = duration('absoluteTimeout', o.absoluteTimeout, DEFAULTS.absoluteTimeout)
  const requestTimeout = duration('requestTimeout', o.requestTimeout, DEFAULTS.requestTimeout)
  const keepAliveInterval = o.keepAliveInterval === 0 ? 0 : duration('keepAliveInterval', o.keepAliveInterval, 60_000)

  const loginRateLimit = o.loginRateLimit ?? { max: 30, timeWindow: 60_000 }
  if (typeof loginRateLimit !== 'object' || loginRateLimit === null) invalid('loginRateLimit', '{ max, timeWindow }', loginRateLimit)
  const { max, timeWindow } = loginRateLimit as Record<string, unknown>
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) invalid('loginRateLimit.max', 'a positive integer', max)
  if (typeof timeWindow !== 'number' || !Number.isSafeInteger(timeWindow) || timeWindow <= 0) invalid('loginRateLimit.timeWindow', 'a positive integer (milliseconds)', timeWindow)

  // One prefix per service app, the same in each of its processes: from its token.
  const prefix = `sso:service:${createHash('sha256').update(o.token).digest('hex').slice(0, 12)}:`

  const dispatcher = o.dispatcher
  if (dispatcher !== undefined && (dispatcher === null || typeof (dispatcher as { dispatch?: unknown }).dispatch !== 'function')) {
    invalid('dispatcher', 'an undici Dispatcher', dispatcher)
  }

  const afterLogoutUrl = o.afterLogoutUrl ?? DEFAULTS.afterLogoutUrl
  if (checkNextUrl(afterLogoutUrl) === null) invalid('afterLogoutUrl', 'a relative path such as "/"', afterLogoutUrl)

  const pages = resolvePageOptions(o as PageOptions, SERVICE_PAGE_NAMES, (name, problem, value) => invalid(name, problem.replace(/^must be /, ''), value))
  const notFoundPage = o.notFoundPage ?? false
  if (typeof notFoundPage !== 'boolean') invalid('notFoundPage', 'true or false', notFoundPage)

  return Object.freeze({
    gatewayUrl,
    gatewayInternalUrl,
    token: o.token,
    signingSecrets: Object.freeze(signingSecrets),
    acceptUnsignedEvents,
    sessionSecret: Array.isArray(sessionSecret) ? [...sessionSecret as string[]] : sessionSecret as string,
    cookieName,
    cookieSecure,
    database,
    idleTimeout,
    absoluteTimeout,
    requestTimeout,
    keepAliveInterval,
    loginRateLimit: Object.freeze({ max, timeWindow: timeWindow as number }),
    store: o.store === undefined ? undefined : redisOption('store', o.store, prefix),
    limits: limits(o.limits, prefix),
    dispatcher: dispatcher as ResolvedOptions['dispatcher'],
    afterLogoutUrl: afterLogoutUrl as string,
    pages,
    notFoundPage,
    accounts: accountsAdapter(o.accounts),
    pipeline: optionalFunction('pipeline', options.pipeline),
    onAccount: optionalFunction('onAccount', options.onAccount),
    onDeauthenticate: optionalFunction('onDeauthenticate', options.onDeauthenticate)
  })
}
