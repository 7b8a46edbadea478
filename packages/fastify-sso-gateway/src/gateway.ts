import type { FastifyBaseLogger } from 'fastify'
import {
  generateSigningSecret, generateToken, hashToken, isSigningSecret, type SqliteSessionStore
} from 'fastify-sso-protocol'
import { errors } from './errors.js'
import { deauthenticateEvent, updateAccountEvent } from './outbox/events.js'
import type { OutboxDispatcher } from './outbox/dispatcher.js'
import { MAX_PASSWORD_LENGTH, type PasswordHasher } from './passwords.js'
import type { GatewayStore, ServiceRecord, UserPatch, UserRecord } from './store/store.js'
import type {
  CreateUserInput, GatewayService, GatewayUser, RegisterServiceInput, RegisteredService, SsoGatewayApi, UpdateUserInput
} from './types.js'
import { canonicalUsername } from './usernames.js'

const publicUser = ({ passwordHash: _hash, ...user }: UserRecord): GatewayUser => user
const publicService = ({ tokenHash: _t, signingSecret: _s, djangoToken: _d, ...service }: ServiceRecord): GatewayService => service

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

function checkPassword (password: unknown): string {
  if (typeof password !== 'string' || password.length === 0) throw new errors.INVALID_PASSWORD('it must be a non-empty string')
  if (password.length > MAX_PASSWORD_LENGTH) throw new errors.INVALID_PASSWORD(`it must be at most ${MAX_PASSWORD_LENGTH} characters`)
  return password
}

export interface GatewayDeps {
  store: GatewayStore
  sessions: SqliteSessionStore
  hasher: PasswordHasher
  outbox: OutboxDispatcher
  log: FastifyBaseLogger
}

/** The gateway's own logic, shared by the routes and the `fastify.ssoGateway` decorator. */
export class Gateway implements SsoGatewayApi {
  readonly #d: GatewayDeps

  constructor (deps: GatewayDeps) {
    this.#d = deps
  }

  get store (): GatewayStore {
    return this.#d.store
  }

  async registerService (input: RegisterServiceInput): Promise<RegisteredService> {
    const name = typeof input?.name === 'string' ? input.name.trim() : ''
    if (name.length === 0 || name.length > 100) throw new errors.INVALID_SERVICE(JSON.stringify(input?.name), 'name must be 1 to 100 characters')
    // Only the base URL loses its trailing slash (paths are appended to it); an event URL
    // is kept as given: a Django service answers a POST to `/sso/event` (no slash) with an error.
    const baseUrl = checkUrl(name, 'baseUrl', input.baseUrl).replace(/\/+$/, '')
    const eventUrl = input.eventUrl === undefined ? `${baseUrl}/sso/event/` : checkUrl(name, 'eventUrl', input.eventUrl)
    const protocol = input.protocol ?? 'fastify-sso'
    if (protocol !== 'fastify-sso' && protocol !== 'django-sso') throw new errors.INVALID_SERVICE(name, 'protocol must be fastify-sso or django-sso')
    if (input.secret !== undefined && (typeof input.secret !== 'string' || input.secret.length < 32 || input.secret.length > 256)) {
      throw new errors.INVALID_SERVICE(name, 'secret must be 32 to 256 characters')
    }
    if (input.signingSecret !== undefined && !isSigningSecret(input.signingSecret)) {
      throw new errors.INVALID_SERVICE(name, 'signingSecret must be whsec_ followed by base64 of at least 24 bytes')
    }
    const secret = input.secret ?? generateToken()
    const signingSecret = input.signingSecret ?? generateSigningSecret()
    const service = await this.#d.store.createService({
      id: 'svc_' + generateToken(12),
      name,
      baseUrl,
      eventUrl,
      tokenHash: hashToken(secret),
      signingSecret,
      djangoToken: protocol === 'django-sso' ? secret : null,
      protocol,
      enabled: true
    })
    this.#d.log.info({ audit: 'service_registered', service: name }, 'sso service registered')
    return { service: publicService(service), secret, signingSecret }
  }

  async getService (name: string): Promise<GatewayService | null> {
    const s = await this.#d.store.getServiceByName(name)
    return s === null ? null : publicService(s)
  }

  async listServices (): Promise<GatewayService[]> {
    return (await this.#d.store.listServices()).map(publicService)
  }

  async setServiceEnabled (name: string, enabled: boolean): Promise<GatewayService> {
    const s = await this.#d.store.getServiceByName(name)
    if (s === null) throw new errors.SERVICE_NOT_FOUND(name)
    return publicService((await this.#d.store.updateService(s.id, { enabled: enabled === true }))!)
  }

  /** The service a secret belongs to, if it is enabled. */
  async serviceBySecret (secret: string): Promise<ServiceRecord | null> {
    const s = await this.#d.store.getServiceByTokenHash(hashToken(secret))
    return s !== null && s.enabled ? s : null
  }

  async createUser (input: CreateUserInput): Promise<GatewayUser> {
    const username = canonicalUsername(input?.username)
    if (username === null) throw new errors.INVALID_USERNAME(JSON.stringify(input?.username))
    const passwordHash = input.password === undefined ? null : await this.#d.hasher.hash(checkPassword(input.password))
    const user = await this.#d.store.createUser({
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
    return publicUser(user)
  }

  async getUser (username: string): Promise<GatewayUser | null> {
    const user = await this.userByName(username)
    return user === null ? null : publicUser(user)
  }

  /** A user by any spelling of the username (full record, internal). */
  async userByName (username: unknown): Promise<UserRecord | null> {
    const name = canonicalUsername(username)
    return name === null ? null : await this.#d.store.getUserByUsername(name)
  }

  async #requireUser (username: string): Promise<UserRecord> {
    const user = await this.userByName(username)
    if (user === null) throw new errors.USER_NOT_FOUND(JSON.stringify(username))
    return user
  }

  /** Changes a user and queues `update_account` for every enabled service in the same transaction. */
  async #update (user: UserRecord, patch: UserPatch): Promise<UserRecord> {
    const services = (await this.#d.store.listServices()).filter((s) => s.enabled)
    const ids: string[] = []
    const updated = await this.#d.store.updateUser(user.id, patch, (u) => services.map((s) => {
      const e = updateAccountEvent(s, u)
      ids.push(e.id)
      return e
    }))
    /* c8 ignore next: the user was read just before; only a concurrent deletion gets here */
    if (updated === null) throw new errors.USER_NOT_FOUND(JSON.stringify(user.username))
    this.#d.outbox.kick()
    return updated
  }

  async updateUser (username: string, patch: UpdateUserInput): Promise<GatewayUser> {
    const user = await this.#requireUser(username)
    const p: UserPatch = {}
    if (patch.password !== undefined) p.passwordHash = await this.#d.hasher.hash(checkPassword(patch.password))
    if (patch.isActive !== undefined) p.isActive = patch.isActive === true
    if (patch.isStaff !== undefined) p.isStaff = patch.isStaff === true
    if (patch.isSuperuser !== undefined) p.isSuperuser = patch.isSuperuser === true
    if (patch.email !== undefined) p.email = patch.email
    if (patch.displayName !== undefined) p.displayName = patch.displayName
    if (patch.attributes !== undefined) p.attributes = patch.attributes
    const updated = await this.#update(user, p)
    this.#d.log.info({ audit: 'user_updated', user: user.username, fields: Object.keys(p) }, 'sso user updated')
    if (p.isActive === false) await this.#logout(updated)
    return publicUser(updated)
  }

  async disableUser (username: string): Promise<GatewayUser> {
    return await this.updateUser(username, { isActive: false })
  }

  async logoutUser (username: string): Promise<number> {
    return await this.#logout(await this.#requireUser(username))
  }

  /** Ends the user's gateway sessions and queues `deauthenticate` for every enabled service. */
  async #logout (user: UserRecord): Promise<number> {
    const ended = this.#d.sessions.destroyByUser(user.id)
    const services = (await this.#d.store.listServices()).filter((s) => s.enabled)
    await this.#d.store.enqueueEvents(services.map((s) => deauthenticateEvent(s, user)))
    this.#d.outbox.kick()
    this.#d.log.info({ audit: 'logout_everywhere', user: user.username, sessions: ended }, 'sso user signed out everywhere')
    return ended
  }

  /** Checks a password; an unknown user (null) is checked against a dummy hash, taking as long. */
  async verifyPassword (user: UserRecord | null, password: string): Promise<{ ok: boolean, rehash: boolean }> {
    return await this.#d.hasher.verify(user?.passwordHash ?? null, password)
  }

  /** Re-hashes a password with the current parameters (after they were raised). */
  async rehashPassword (user: UserRecord, password: string): Promise<void> {
    await this.#d.store.updateUser(user.id, { passwordHash: await this.#d.hasher.hash(password) })
    this.#d.log.info({ audit: 'password_rehashed', user: user.username }, 'sso password re-hashed with current parameters')
  }

  /**
   * Queues and tries at once to deliver `update_account` to the service the user is signing
   * in to, waiting at most `timeout` ms in all. For a django-sso service, which needs the
   * account before it can sign the user in, earlier events still queued for that user and
   * service are tried first (in order), so a retry works as soon as the service is back.
   */
  async pushAccountTo (service: ServiceRecord, user: UserRecord, timeout: number): Promise<boolean> {
    const deadline = Date.now() + timeout
    const event = updateAccountEvent(service, user)
    const earlier = service.protocol === 'django-sso' ? await this.#d.store.expediteEvents(service.id, user.id, Date.now()) : []
    await this.#d.store.enqueueEvents([event])
    let delivered = true
    for (const id of [...earlier, event.id]) {
      delivered = await this.#d.outbox.deliverNow([id], Math.max(0, deadline - Date.now()))
      if (!delivered) break
    }
    if (!delivered) this.#d.outbox.kick()
    return delivered
  }

  events = {
    status: async () => await this.#d.store.deliveryStatus(),
    dead: async (limit = 100) => await this.#d.store.listEvents('dead', limit),
    replay: async (id: string) => {
      const ok = await this.#d.store.replayEvent(id, Date.now())
      if (ok) this.#d.outbox.kick()
      return ok
    },
    flush: async () => {
      this.#d.outbox.kick()
      await this.#d.outbox.idle()
    }
  }
}
