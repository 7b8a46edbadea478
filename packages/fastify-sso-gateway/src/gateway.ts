import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyBaseLogger } from 'fastify'
import {
  generateSigningSecret, generateToken, hashToken, isSigningSecret, type DeauthenticateReason, type SessionLifetime
} from 'fastify-sso-protocol'
import { errors } from './errors.js'
import {
  accountFor, DEFAULT_FIELDS, isDjango, deauthenticateEvent, deleteAccountEvent, RESERVED_FIELDS, renameAccountEvent, updateAccountEvent
} from './outbox/events.js'
import type { OutboxDispatcher } from './outbox/dispatcher.js'
import { MAX_PASSWORD_LENGTH, type PasswordHasher } from './passwords.js'
import { RequestTokens } from './request-tokens.js'
import type {
  AuditFilter, AuditRecord, EndedSessions, EndUserSessions, GatewayStore, NewOutboxEvent, ServiceAccess, ServicePatch, ServiceProtocol, ServiceRecord, ServiceUser, UserPatch, UserRecord
} from './store/store.js'
import type {
  AccessCheck, AccessInput, ChangePasswordOptions, CreateUserInput, GatewayService, GatewayUser, ListUsersOptions, RegisterServiceInput,
  RegisteredService, RotatedSecrets, RotateSecretsInput, SsoGatewayApi, SsoSessionInfo, UpdateServiceInput, UpdateUserInput
} from './types.js'
import { canonicalUsername } from './usernames.js'

const publicUser = ({ passwordHash: _hash, ...user }: UserRecord): GatewayUser => user
const publicService = ({ tokenHash: _t, signingSecret: _s, djangoToken: _d, previous, ...service }: ServiceRecord): GatewayService =>
  ({ ...service, overlapUntil: previous !== null && previous.until > Date.now() ? previous.until : null })

function checkUrl (name: string, field: string, value: unknown): string {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw new errors.INVALID_SERVICE(name, `${field} must be an absolute http(s) URL`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' ||
    url.search !== '' || url.hash !== '') {
    throw new errors.INVALID_SERVICE(name, `${field} must be an http(s) URL without credentials, query or fragment`)
  }
  return url.href
}

function checkDisplayName (name: string, value: unknown): string | null {
  if (value === null || value === undefined) return null
  const trimmed = typeof value === 'string' ? value.trim() : ''
  if (trimmed.length === 0 || trimmed.length > 100) throw new errors.INVALID_SERVICE(name, 'displayName must be 1 to 100 characters, or null')
  return trimmed
}

/** A logo: an absolute http(s) URL, or a path on the gateway's host (`/…`, not `//…`). */
function checkLogoUrl (name: string, value: unknown): string | null {
  if (value === null || value === undefined) return null
  const problem = 'logoUrl must be an absolute http(s) URL or a path starting with /, at most 2048 characters'
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048 || /[\s<>"'\\]/.test(value)) throw new errors.INVALID_SERVICE(name, problem)
  if (value.startsWith('/')) {
    if (value.startsWith('//')) throw new errors.INVALID_SERVICE(name, problem)
    return value
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new errors.INVALID_SERVICE(name, problem)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') throw new errors.INVALID_SERVICE(name, problem)
  return url.href
}

function checkPassword (password: unknown, min: number): string {
  if (typeof password !== 'string' || password.length === 0) throw new errors.INVALID_PASSWORD('it must be a non-empty string')
  // Counted in code points, as a user counts characters (an emoji is one).
  if ([...password].length < min) throw new errors.INVALID_PASSWORD(`it must be at least ${min} characters`)
  if (password.length > MAX_PASSWORD_LENGTH) throw new errors.INVALID_PASSWORD(`it must be at most ${MAX_PASSWORD_LENGTH} characters`)
  return password
}

function checkFields (name: string, fields: unknown): string[] | null {
  if (fields === null || fields === undefined) return null
  if (!Array.isArray(fields) || fields.length > 100 || !fields.every((f) => typeof f === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(f))) {
    throw new errors.INVALID_SERVICE(name, 'fields must be a list of attribute names (letters, digits, _)')
  }
  const reserved = fields.find((f) => RESERVED_FIELDS.has(f))
  if (reserved !== undefined) throw new errors.INVALID_SERVICE(name, `fields: ${reserved} is always sent and cannot be chosen`)
  return [...new Set(fields as string[])]
}

const PROTOCOLS: ReadonlySet<string> = new Set(['fastify-sso', 'django-sso-1', 'django-sso-2'])

/** The dialect a service is registered with; `django-sso` (the only value before 2.x support) means 1.x. */
function checkProtocol (name: string, protocol: unknown): ServiceProtocol {
  if (protocol === undefined) return 'fastify-sso'
  if (protocol === 'django-sso') return 'django-sso-1'
  if (typeof protocol !== 'string' || !PROTOCOLS.has(protocol)) {
    throw new errors.INVALID_SERVICE(name, `protocol must be fastify-sso, django-sso-1 (django-sso 1.x) or django-sso-2 (django-sso 2.x and 3.x), got ${JSON.stringify(protocol)}`)
  }
  return protocol as ServiceProtocol
}

/** `checkFields`, and a django-sso 1.x service refuses any key but its four: it can take no field. */
function checkFieldsFor (name: string, protocol: ServiceProtocol, fields: unknown): string[] | null {
  const checked = checkFields(name, fields)
  if (protocol === 'django-sso-1' && checked !== null && checked.length > 0) {
    throw new errors.INVALID_SERVICE(name, 'fields: a django-sso 1.x service refuses every key but username and the three flags; use protocol django-sso-2 for extra fields')
  }
  return checked
}

function checkGroupName (name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 100) throw new errors.INVALID_GROUP(JSON.stringify(name))
  return name
}

const actors = new AsyncLocalStorage<string>()

/**
 * Runs `fn` so that every audit record written meanwhile names `actor` (`admin:alice` for the
 * console, `cli` for the command line): one place says who, however deep the change goes.
 */
export async function actingAs<T> (actor: string, fn: () => Promise<T>): Promise<T> {
  return await actors.run(actor, fn)
}

/** Default overlap of a secret rotation: the old secret keeps working this long, in ms. */
export const ROTATION_OVERLAP = 24 * 3_600_000

/** Names of user fields on the wire, for `changed` in `update_account`. */
const WIRE_NAMES: Record<string, string> = { isActive: 'is_active', isStaff: 'is_staff', isSuperuser: 'is_superuser', displayName: 'display_name' }

export interface GatewayDeps {
  store: GatewayStore
  hasher: PasswordHasher
  outbox: OutboxDispatcher
  log: FastifyBaseLogger
  /** The app's extra access rule, if any. */
  accessCheck?: AccessCheck | undefined
  /** Shortest password accepted when one is set. @default 15 */
  minPasswordLength: number
  /** Lifetimes of request tokens, in ms. */
  tokenTtl: { pending: number, authenticated: number }
}

/** `deauthenticate` for every enabled service each ended SSO session reached. */
function deauthenticateReached (services: ServiceRecord[], user: UserRecord, ended: EndedSessions, reason: DeauthenticateReason): NewOutboxEvent[] {
  return ended.ssoSessions.flatMap((sso) => services.filter((s) => sso.services.includes(s.id))
    .map((s) => deauthenticateEvent(s, user, sso.id, reason)))
}

/** The gateway's own logic, shared by the routes and the `fastify.ssoGateway` decorator. */
export class Gateway implements SsoGatewayApi {
  readonly #d: GatewayDeps
  /** The request-token state machine the routes call. */
  readonly tokens: RequestTokens

  constructor (deps: GatewayDeps) {
    this.#d = deps
    this.tokens = new RequestTokens(deps.store, deps.tokenTtl, () => deps.outbox.kick())
  }

  // ---------------------------------------------------------------- services

  async registerService (input: RegisterServiceInput): Promise<RegisteredService> {
    const name = typeof input?.name === 'string' ? input.name.trim() : ''
    if (name.length === 0 || name.length > 100) throw new errors.INVALID_SERVICE(JSON.stringify(input?.name), 'name must be 1 to 100 characters')
    // Only the base URL loses its trailing slash (paths are appended to it); an event URL
    // is kept as given: a Django service answers a POST to `/sso/event` (no slash) with an error.
    const baseUrl = checkUrl(name, 'baseUrl', input.baseUrl).replace(/\/+$/, '')
    const eventUrl = input.eventUrl === undefined ? `${baseUrl}/sso/event/` : checkUrl(name, 'eventUrl', input.eventUrl)
    const protocol = checkProtocol(name, input.protocol)
    if (input.secret !== undefined && (typeof input.secret !== 'string' || input.secret.length < 32 || input.secret.length > 256)) {
      throw new errors.INVALID_SERVICE(name, 'secret must be 32 to 256 characters')
    }
    if (input.signingSecret !== undefined && !isSigningSecret(input.signingSecret)) {
      throw new errors.INVALID_SERVICE(name, 'signingSecret must be whsec_ followed by base64 of at least 24 bytes')
    }
    const access = await this.#access(name, input.access)
    const fields = checkFieldsFor(name, protocol, input.fields)
    const displayName = checkDisplayName(name, input.displayName)
    const logoUrl = checkLogoUrl(name, input.logoUrl)
    const secret = input.secret ?? generateToken()
    const signingSecret = input.signingSecret ?? generateSigningSecret()
    const service = await this.#d.store.services.create({
      id: 'svc_' + generateToken(12),
      name,
      baseUrl,
      eventUrl,
      tokenHash: hashToken(secret),
      signingSecret,
      djangoToken: protocol === 'fastify-sso' ? null : secret,
      protocol,
      enabled: true,
      freshLogin: input.requireFreshLogin === true,
      access,
      fields,
      displayName,
      logoUrl
    })
    this.#d.log.info({ audit: 'service_registered', service: name }, 'sso service registered')
    await this.audit('service_registered', { service: name, detail: { baseUrl, protocol } })
    return { service: publicService(service), secret, signingSecret }
  }

  /** An access rule as stored: usernames become the users' stable ids; groups must exist. */
  async #access (name: string, input: AccessInput | null | undefined): Promise<ServiceAccess | null> {
    if (input === null || input === undefined) return null
    if (typeof input !== 'object') throw new errors.INVALID_SERVICE(name, 'access must be { users?, groups? } or null')
    const users: string[] = []
    for (const username of input.users ?? []) {
      const user = await this.userByName(username)
      if (user === null) throw new errors.INVALID_SERVICE(name, `access: no user ${JSON.stringify(username)}`)
      users.push(user.id)
    }
    const known = new Set(await this.#d.store.groups.list())
    for (const group of input.groups ?? []) {
      if (!known.has(group)) throw new errors.INVALID_GROUP(JSON.stringify(group))
    }
    return { users, groups: [...(input.groups ?? [])] }
  }

  async getService (name: string): Promise<GatewayService | null> {
    const s = await this.#d.store.services.byName(name)
    return s === null ? null : publicService(s)
  }

  async listServices (): Promise<GatewayService[]> {
    return (await this.#d.store.services.list()).map(publicService)
  }

  async setServiceEnabled (name: string, enabled: boolean): Promise<GatewayService> {
    return await this.updateService(name, { enabled: enabled === true })
  }

  async updateService (name: string, patch: UpdateServiceInput): Promise<GatewayService> {
    const s = await this.#d.store.services.byName(name)
    if (s === null) throw new errors.SERVICE_NOT_FOUND(name)
    const p: ServicePatch = {}
    if (patch.baseUrl !== undefined) p.baseUrl = checkUrl(name, 'baseUrl', patch.baseUrl).replace(/\/+$/, '')
    if (patch.eventUrl !== undefined) p.eventUrl = checkUrl(name, 'eventUrl', patch.eventUrl)
    if (patch.enabled !== undefined) p.enabled = patch.enabled === true
    if (patch.requireFreshLogin !== undefined) p.freshLogin = patch.requireFreshLogin === true
    if (patch.access !== undefined) p.access = await this.#access(name, patch.access)
    if (patch.fields !== undefined) p.fields = checkFieldsFor(name, s.protocol, patch.fields)
    if (patch.displayName !== undefined) p.displayName = checkDisplayName(name, patch.displayName)
    if (patch.logoUrl !== undefined) p.logoUrl = checkLogoUrl(name, patch.logoUrl)
    if (patch.signingSecret !== undefined) {
      // Rotation: give the service both secrets first (it accepts either), then switch here.
      if (!isSigningSecret(patch.signingSecret)) throw new errors.INVALID_SERVICE(name, 'signingSecret must be whsec_ followed by base64 of at least 24 bytes')
      p.signingSecret = patch.signingSecret
    }
    const updated = await this.#d.store.services.update(s.id, p)
    /* c8 ignore next: the service was read just before; only a concurrent deletion gets here */
    if (updated === null) throw new errors.SERVICE_NOT_FOUND(name)
    this.#d.log.info({ audit: 'service_updated', service: name, fields: Object.keys(p) }, 'sso service updated')
    await this.audit('service_updated', { service: name, detail: { fields: Object.keys(p) } })
    return publicService(updated)
  }

  /** The service a secret belongs to, if it is enabled (a rotated-out secret: until its overlap ends). */
  async serviceBySecret (secret: string): Promise<ServiceRecord | null> {
    const hash = hashToken(secret)
    const s = await this.#d.store.services.byTokenHash(hash)
    if (s === null || !s.enabled) return null
    if (s.tokenHash === hash) return s
    return s.previous?.tokenHash === hash && s.previous.until > Date.now() ? s : null
  }

  async rotateSecrets (name: string, input: RotateSecretsInput = {}): Promise<RotatedSecrets> {
    const s = await this.#d.store.services.byName(name)
    if (s === null) throw new errors.SERVICE_NOT_FOUND(name)
    const rotateSecret = input.secret !== false
    const rotateSigning = input.signingSecret !== false
    if (!rotateSecret && !rotateSigning) throw new errors.INVALID_SERVICE(name, 'rotate at least one of secret and signingSecret')
    const overlap = input.overlap ?? ROTATION_OVERLAP
    if (!Number.isInteger(overlap) || overlap < 0 || overlap > 30 * 86_400_000) {
      throw new errors.INVALID_SERVICE(name, `overlap must be a whole number of milliseconds from 0 to 30 days, got ${JSON.stringify(overlap)}`)
    }
    const now = Date.now()
    // What an earlier rotation still keeps alive stays alive (its own window, or this one's).
    const live = s.previous !== null && s.previous.until > now ? s.previous : null
    const secret = rotateSecret ? generateToken() : undefined
    const signingSecret = rotateSigning ? generateSigningSecret() : undefined
    const p: ServicePatch = {}
    if (secret !== undefined) {
      p.tokenHash = hashToken(secret)
      if (s.djangoToken !== null) p.djangoToken = secret
    }
    if (signingSecret !== undefined) p.signingSecret = signingSecret
    const previous = {
      tokenHash: secret !== undefined ? s.tokenHash : live?.tokenHash ?? null,
      signingSecret: signingSecret !== undefined ? s.signingSecret : live?.signingSecret ?? null,
      until: Math.max(now + overlap, live?.until ?? 0)
    }
    p.previous = overlap === 0 ? (live === null ? null : { ...live, ...(secret !== undefined ? { tokenHash: null } : {}), ...(signingSecret !== undefined ? { signingSecret: null } : {}) }) : previous
    const updated = await this.#d.store.services.update(s.id, p)
    /* c8 ignore next: the service was read just before; only a concurrent deletion gets here */
    if (updated === null) throw new errors.SERVICE_NOT_FOUND(name)
    const rotated = [...(secret !== undefined ? ['secret'] : []), ...(signingSecret !== undefined ? ['signingSecret'] : [])]
    this.#d.log.info({ audit: 'service_secret_rotated', service: name, rotated, overlap }, 'sso service secrets rotated')
    await this.audit('service_secret_rotated', { service: name, detail: { rotated, overlap } })
    return {
      service: publicService(updated),
      ...(secret === undefined ? {} : { secret }),
      ...(signingSecret === undefined ? {} : { signingSecret }),
      overlapUntil: overlap === 0 ? null : previous.until
    }
  }

  // ------------------------------------------------------------------- audit

  /**
   * Appends an audit record (who: the actor of `actingAs`, else null). Never fails the
   * change it records: a store error is logged.
   */
  async audit (kind: string, about: { user?: string | null, service?: string | null, detail?: Record<string, unknown> } = {}): Promise<void> {
    try {
      await this.#d.store.audit.append([{
        at: Date.now(), kind, actor: actors.getStore() ?? null, user: about.user ?? null, service: about.service ?? null, detail: about.detail ?? {}
      }])
    } catch (err) {
      this.#d.log.error({ err, kind }, 'sso audit record could not be written')
    }
  }

  async auditLog (filter: Partial<AuditFilter> = {}): Promise<AuditRecord[]> {
    const limit = filter.limit === undefined ? 100 : Math.max(1, Math.min(1000, Math.floor(filter.limit)))
    return await this.#d.store.audit.list({ ...filter, limit })
  }

  /** Whether `user` may sign in to `service`: the stored rule, then the app's `accessCheck`. */
  async mayUse (service: ServiceRecord, user: UserRecord, userGroups?: readonly string[]): Promise<boolean> {
    const groups = userGroups ?? await this.#d.store.groups.ofUser(user.id)
    if (service.access !== null) {
      const allowed = service.access.users.includes(user.id) || service.access.groups.some((g) => groups.includes(g))
      if (!allowed) return false
    }
    if (this.#d.accessCheck === undefined) return true
    return await this.#d.accessCheck({ ...publicUser(user), groups: [...groups] }, publicService(service)) === true
  }

  // ------------------------------------------------------------------- users

  async createUser (input: CreateUserInput): Promise<GatewayUser> {
    const username = canonicalUsername(input?.username)
    if (username === null) throw new errors.INVALID_USERNAME(JSON.stringify(input?.username))
    const passwordHash = input.password === undefined ? null : await this.#d.hasher.hash(checkPassword(input.password, this.#d.minPasswordLength))
    const user = await this.#d.store.users.create({
      id: 'usr_' + generateToken(12),
      username,
      passwordHash,
      isActive: input.isActive ?? true,
      isStaff: input.isStaff ?? false,
      isSuperuser: input.isSuperuser ?? false,
      email: input.email ?? null,
      displayName: input.displayName ?? null,
      attributes: input.attributes ?? {}
    })
    this.#d.log.info({ audit: 'user_created', user: username }, 'sso user created')
    await this.audit('user_created', { user: username })
    return publicUser(user)
  }

  async listUsers (options: ListUsersOptions = {}): Promise<GatewayUser[]> {
    const limit = Math.max(1, Math.min(1000, Math.floor(options.limit ?? 100)))
    return (await this.#d.store.users.list(options.after ?? '', limit, options.prefix ?? '')).map(publicUser)
  }

  async getUser (username: string): Promise<GatewayUser | null> {
    const user = await this.userByName(username)
    return user === null ? null : publicUser(user)
  }

  /** A user by any spelling of the username (full record, internal). */
  async userByName (username: unknown): Promise<UserRecord | null> {
    const name = canonicalUsername(username)
    return name === null ? null : await this.#d.store.users.byUsername(name)
  }

  async #requireUser (username: string): Promise<UserRecord> {
    const user = await this.userByName(username)
    if (user === null) throw new errors.USER_NOT_FOUND(JSON.stringify(username))
    return user
  }

  async #enabledServices (): Promise<ServiceRecord[]> {
    return (await this.#d.store.services.list()).filter((s) => s.enabled)
  }

  /**
   * Changes a user and queues, in the same transaction, `update_account` (with the changed
   * fields) for every enabled service — or `rename_account` when only the name changed. With
   * `end`, the same transaction ends the user's sessions (see `#endEvents`).
   */
  async #update (user: UserRecord, patch: UserPatch, end?: { sessions: EndUserSessions, reason: DeauthenticateReason, everywhere: boolean }): Promise<{ user: UserRecord, ended: EndedSessions }> {
    const services = await this.#enabledServices()
    const groups = await this.#d.store.groups.ofUser(user.id)
    const changed = Object.keys(patch).filter((k) => k !== 'passwordHash').map((k) => WIRE_NAMES[k] ?? k)
    let ended: EndedSessions = { browserSessions: 0, ssoSessions: [] }
    const updated = await this.#d.store.users.update(user.id, patch, (u, e) => {
      ended = e
      const events = services.flatMap((s) => {
        const events: NewOutboxEvent[] = []
        if (u.username !== user.username) events.push(renameAccountEvent(s, u, user.username))
        if (changed.some((c) => c !== 'username')) events.push(updateAccountEvent(s, u, groups, changed.filter((c) => c !== 'username')))
        return events
      })
      return end === undefined ? events : [...events, ...this.#endEvents(services, u, e, end.reason, end.everywhere)]
    }, end?.sessions)
    /* c8 ignore next: the user was read just before; only a concurrent deletion gets here */
    if (updated === null) throw new errors.USER_NOT_FOUND(JSON.stringify(user.username))
    this.#d.outbox.kick()
    return { user: updated, ended }
  }

  /**
   * What ending sessions tells the services: signed out everywhere (django-sso's meaning),
   * `deauthenticate` without an SSO session to every enabled service; otherwise one per SSO
   * session ended, to the services it reached.
   */
  #endEvents (services: ServiceRecord[], user: UserRecord, ended: EndedSessions, reason: DeauthenticateReason, everywhere: boolean): NewOutboxEvent[] {
    return everywhere ? services.map((s) => deauthenticateEvent(s, user, undefined, reason)) : deauthenticateReached(services, user, ended, reason)
  }

  async updateUser (username: string, patch: UpdateUserInput): Promise<GatewayUser> {
    const user = await this.#requireUser(username)
    const p: UserPatch = {}
    if (patch.password !== undefined) p.passwordHash = await this.#d.hasher.hash(checkPassword(patch.password, this.#d.minPasswordLength))
    if (patch.isActive !== undefined) p.isActive = patch.isActive === true
    if (patch.isStaff !== undefined) p.isStaff = patch.isStaff === true
    if (patch.isSuperuser !== undefined) p.isSuperuser = patch.isSuperuser === true
    if (patch.email !== undefined) p.email = patch.email
    if (patch.displayName !== undefined) p.displayName = patch.displayName
    if (patch.attributes !== undefined) p.attributes = patch.attributes
    // Disabling signs the user out everywhere, in the same transaction as the change.
    const disable = p.isActive === false
    const { user: updated, ended } = await this.#update(user, p, disable ? { sessions: {}, reason: 'disabled', everywhere: true } : undefined)
    this.#d.log.info({ audit: 'user_updated', user: user.username, fields: Object.keys(p) }, 'sso user updated')
    await this.audit('user_updated', { user: user.username, detail: { fields: Object.keys(p) } })
    if (disable) this.#d.log.info({ audit: 'logout_everywhere', user: user.username, sessions: ended.browserSessions, reason: 'disabled' }, 'sso user signed out everywhere')
    return publicUser(updated)
  }

  async disableUser (username: string): Promise<GatewayUser> {
    return await this.updateUser(username, { isActive: false })
  }

  async renameUser (username: string, newUsername: string): Promise<GatewayUser> {
    const user = await this.#requireUser(username)
    const name = canonicalUsername(newUsername)
    if (name === null) throw new errors.INVALID_USERNAME(JSON.stringify(newUsername))
    if (name === user.username) return publicUser(user)
    const { user: updated } = await this.#update(user, { username: name })
    this.#d.log.info({ audit: 'user_renamed', user: name, from: user.username }, 'sso user renamed')
    await this.audit('user_renamed', { user: name, detail: { from: user.username } })
    return publicUser(updated)
  }

  async deleteUser (username: string): Promise<void> {
    const user = await this.#requireUser(username)
    const services = await this.#enabledServices()
    const ended = await this.#d.store.users.delete(user.id, () =>
      services.flatMap((s) => [deauthenticateEvent(s, user, undefined, 'deleted'), deleteAccountEvent(s, user)]))
    /* c8 ignore next: the user was read just before; only a concurrent deletion gets here */
    if (ended === null) throw new errors.USER_NOT_FOUND(JSON.stringify(user.username))
    this.#d.outbox.kick()
    this.#d.log.info({ audit: 'user_deleted', user: user.username, sessions: ended.browserSessions }, 'sso user deleted')
    await this.audit('user_deleted', { user: user.username })
  }

  async changePassword (username: string, password: string, options: ChangePasswordOptions = {}): Promise<number> {
    const user = await this.#requireUser(username)
    const passwordHash = await this.#d.hasher.hash(checkPassword(password, this.#d.minPasswordLength))
    const end = options.endSessions ?? 'others'
    // The new password and the end of the old sessions are one change: no crash leaves the
    // password changed and the sessions it should have ended alive.
    const { ended } = await this.#update(user, { passwordHash }, end === 'none'
      ? undefined
      : { sessions: { exceptSsoSession: end === 'others' ? options.keepSsoSession : undefined }, reason: 'password_changed', everywhere: false })
    this.#d.log.info({ audit: 'password_changed', user: user.username }, 'sso password changed')
    await this.audit('password_changed', { user: user.username, detail: { sessionsEnded: ended.ssoSessions.length } })
    for (const sso of ended.ssoSessions) {
      this.#d.log.info({ audit: 'sso_session_ended', user: user.username, reason: 'password_changed', services: sso.services.length }, 'sso session ended')
    }
    return ended.ssoSessions.length
  }

  async logoutUser (username: string): Promise<number> {
    return await this.#logoutEverywhere(await this.#requireUser(username), 'logout_everywhere')
  }

  /** Ends every session of the user at the gateway and, in the same transaction, queues `deauthenticate` for every enabled service. */
  async #logoutEverywhere (user: UserRecord, reason: DeauthenticateReason): Promise<number> {
    const services = await this.#enabledServices()
    const ended = await this.#d.store.sessions.destroyByUser(user.id, (e) => this.#endEvents(services, user, e, reason, true))
    this.#d.outbox.kick()
    this.#d.log.info({ audit: 'logout_everywhere', user: user.username, sessions: ended.browserSessions, reason }, 'sso user signed out everywhere')
    await this.audit('logout_everywhere', { user: user.username, detail: { sessions: ended.browserSessions, reason } })
    return ended.browserSessions
  }

  /**
   * Ends one SSO session: the gateway session carrying it, its authenticated request tokens,
   * and (through `deauthenticate` events with `sso_session`, queued in the same transaction)
   * every service session born from it. Sessions of the same user on other devices are untouched.
   */
  async endSsoSession (user: UserRecord, ssoSession: string, reason: DeauthenticateReason): Promise<void> {
    const services = await this.#enabledServices()
    let events = 0
    await this.#d.store.sessions.destroyBySsoSession(ssoSession, (ended) => {
      const queued = deauthenticateReached(services, user, ended, reason)
      events = queued.length
      return queued
    })
    this.#d.outbox.kick()
    this.#d.log.info({ audit: 'sso_session_ended', user: user.username, reason, services: events }, 'sso session ended')
    // Expiry is housekeeping (it can be many at once) and a sign-out is recorded by its route: neither is written here.
    if (reason !== 'expired' && reason !== 'logout') await this.audit('sso_session_ended', { user: user.username, detail: { reason, services: events } })
  }

  /**
   * A service says an SSO session is in use there: its idle clock restarts, as if the browser
   * had used the gateway. False if the session is not live, or never reached that service.
   */
  async touchSsoSession (service: ServiceRecord, ssoSession: string, lifetime: SessionLifetime): Promise<boolean> {
    const reach = (await this.#d.store.ssoSessions.services(ssoSession)).find((r) => r.serviceId === service.id)
    if (reach === undefined) return false
    // A user who lost access to the service since sign-in no longer keeps the session alive there
    // (the service ends its session on this refusal).
    const user = await this.#d.store.users.byId(reach.userId)
    if (user === null || !await this.mayUse(service, user)) return false
    return await this.#d.store.sessions.touch(ssoSession, Date.now(), lifetime) > 0
  }

  /** An SSO session that ended without a request (it expired while nobody used it). */
  async expireSsoSession (userId: string, ssoSession: string): Promise<void> {
    const user = await this.#d.store.users.byId(userId)
    if (user === null) return
    await this.endSsoSession(user, ssoSession, 'expired')
  }

  /** Ends up to `limit` browser sessions that expired, and their SSO sessions at every service they reached. */
  async sweepExpiredSessions (limit: number): Promise<void> {
    for (const ended of await this.#d.store.sessions.takeExpired(Date.now(), limit)) {
      if (ended.user !== null && ended.ssoSession !== null) await this.expireSsoSession(ended.user, ended.ssoSession)
    }
  }

  async #liveSsoSessions (user: UserRecord): Promise<string[]> {
    return [...new Set((await this.#d.store.sessions.listByUser(user.id, Date.now())).map((s) => s.sso).filter((s): s is string => s !== undefined))]
  }

  async listSessions (username: string): Promise<SsoSessionInfo[]> {
    const user = await this.#requireUser(username)
    const names = new Map((await this.#d.store.services.list()).map((s) => [s.id, s.name]))
    const out: SsoSessionInfo[] = []
    for (const s of await this.#d.store.sessions.listByUser(user.id, Date.now())) {
      if (s.sso === undefined) continue
      const reached = await this.#d.store.ssoSessions.services(s.sso)
      out.push({
        id: s.sso,
        createdAt: s.createdAt ?? 0,
        lastSeenAt: s.seenAt ?? s.createdAt ?? 0,
        userAgent: s.ua ?? null,
        ip: s.ip ?? null,
        services: reached.map((r) => names.get(r.serviceId) ?? r.serviceId)
      })
    }
    return out.sort((a, b) => b.lastSeenAt - a.lastSeenAt)
  }

  async revokeSession (username: string, ssoSession: string): Promise<boolean> {
    const user = await this.#requireUser(username)
    if (!(await this.#liveSsoSessions(user)).includes(ssoSession)) return false
    await this.endSsoSession(user, ssoSession, 'revoked')
    return true
  }

  async revokeOtherSessions (username: string, keepSsoSession: string): Promise<number> {
    const user = await this.#requireUser(username)
    const others = (await this.#liveSsoSessions(user)).filter((id) => id !== keepSsoSession)
    for (const id of others) await this.endSsoSession(user, id, 'revoked')
    return others.length
  }

  /** Checks a password; an unknown user (null) is checked against a dummy hash, taking as long. */
  async verifyPassword (user: UserRecord | null, password: string): Promise<{ ok: boolean, rehash: boolean }> {
    return await this.#d.hasher.verify(user?.passwordHash ?? null, password)
  }

  /** Re-hashes a password with the current parameters (after they were raised). */
  async rehashPassword (user: UserRecord, password: string): Promise<void> {
    await this.#d.store.users.update(user.id, { passwordHash: await this.#d.hasher.hash(password) })
    this.#d.log.info({ audit: 'password_rehashed', user: user.username }, 'sso password re-hashed with current parameters')
  }

  /** A user by id (internal). */
  async userById (id: string): Promise<UserRecord | null> {
    return await this.#d.store.users.byId(id)
  }

  /** The account fields a service receives for a user, as `/sso/get/` and events send them. */
  async accountOf (service: ServiceRecord, user: UserRecord): Promise<Record<string, unknown>> {
    return this.accountWith(service, user, await this.#d.store.groups.ofUser(user.id))
  }

  /** `accountOf` with the user's groups already read. */
  accountWith (service: ServiceRecord, user: UserRecord, groups: readonly string[]): Record<string, unknown> {
    return accountFor(service, user, groups)
  }

  /** Whether `user` ever signed in to `service`. */
  async hasSignedIn (service: ServiceRecord, user: UserRecord): Promise<boolean> {
    return await this.#d.store.services.hasUser(service.id, user.id)
  }

  /** Whether an SSO session of `user` reached `service`. */
  async reached (ssoSession: string, service: ServiceRecord, user: UserRecord): Promise<boolean> {
    return (await this.#d.store.ssoSessions.services(ssoSession)).some((r) => r.serviceId === service.id && r.userId === user.id)
  }

  /** One page of the users who ever signed in to a service (resync). */
  async serviceUsers (service: ServiceRecord, after: string, limit: number): Promise<ServiceUser[]> {
    return await this.#d.store.services.users(service.id, after, limit)
  }

  /**
   * The events a sign-in to `service` causes, queued with the request's authentication: a
   * fastify-sso service builds the account from /sso/get/, so its `update_account` goes in
   * the background; a django-sso one got it inline before (`pushAccountTo`).
   */
  signInEvents (service: ServiceRecord, user: UserRecord, groups: readonly string[]): NewOutboxEvent[] {
    if (isDjango(service)) return []
    return [updateAccountEvent(service, user, groups)]
  }

  /** The groups of a user (read once per sign-in: access check and events). */
  async groupsOf (user: UserRecord): Promise<string[]> {
    return await this.#d.store.groups.ofUser(user.id)
  }

  /**
   * For a django-sso service, which finds the user only through `update_account`: queues it
   * and tries at once to deliver it, waiting at most `timeout` ms in all. Earlier events still
   * queued for that user and service are tried first (in order), so a retry works as soon as
   * the service is back.
   */
  async pushAccountTo (service: ServiceRecord, user: UserRecord, timeout: number): Promise<boolean> {
    const deadline = Date.now() + timeout
    const event = updateAccountEvent(service, user, await this.#d.store.groups.ofUser(user.id))
    const earlier = await this.#d.store.outbox.expedite(service.id, user.id, Date.now())
    await this.#d.store.outbox.enqueue([event])
    let delivered = true
    for (const id of [...earlier, event.id]) {
      delivered = await this.#d.outbox.deliverNow([id], Math.max(0, deadline - Date.now()))
      if (!delivered) break
    }
    if (!delivered) this.#d.outbox.kick()
    return delivered
  }

  groups = {
    create: async (name: string): Promise<void> => {
      await this.#d.store.groups.create(checkGroupName(name))
      await this.audit('group_created', { detail: { group: name } })
    },
    delete: async (name: string): Promise<boolean> => {
      const deleted = await this.#d.store.groups.delete(checkGroupName(name))
      if (deleted) await this.audit('group_deleted', { detail: { group: name } })
      return deleted
    },
    list: async (): Promise<string[]> => await this.#d.store.groups.list(),
    addMember: async (group: string, username: string): Promise<void> => {
      await this.#setMember(group, username, true)
    },
    removeMember: async (group: string, username: string): Promise<void> => {
      await this.#setMember(group, username, false)
    },
    members: async (group: string): Promise<GatewayUser[]> => (await this.#d.store.groups.members(checkGroupName(group))).map(publicUser),
    of: async (username: string): Promise<string[]> => await this.#d.store.groups.ofUser((await this.#requireUser(username)).id)
  }

  /** Adds or removes a member; services get `update_account` with the new `groups`, in the same transaction. */
  async #setMember (group: string, username: string, member: boolean): Promise<void> {
    const name = checkGroupName(group)
    const user = await this.#requireUser(username)
    const services = (await this.#enabledServices()).filter((s) => (s.fields ?? DEFAULT_FIELDS).includes('groups'))
    await this.#d.store.groups.setMember(name, user.id, member, (groups) => services.map((s) => updateAccountEvent(s, user, groups, ['groups'])))
    this.#d.outbox.kick()
    this.#d.log.info({ audit: member ? 'group_member_added' : 'group_member_removed', group: name, user: user.username }, 'sso group membership changed')
    await this.audit(member ? 'group_member_added' : 'group_member_removed', { user: user.username, detail: { group: name } })
  }

  /** The error of the latest failed attempt among a service's pending events, or null (the console, the CLI). */
  async lastDeliveryError (serviceId: string): Promise<string | null> {
    const pending = await this.#d.store.outbox.list('pending', 1000)
    return pending.reverse().find((e) => e.serviceId === serviceId && e.lastError !== null)?.lastError ?? null
  }

  events = {
    status: async () => await this.#d.store.outbox.status(),
    dead: async (limit = 100) => await this.#d.store.outbox.list('dead', limit),
    replay: async (id: string) => {
      const ok = await this.#d.store.outbox.replay(id, Date.now())
      if (ok) {
        this.#d.outbox.kick()
        await this.audit('event_replayed', { detail: { event: id } })
      }
      return ok
    },
    flush: async () => {
      this.#d.outbox.kick()
      await this.#d.outbox.idle()
    }
  }
}
