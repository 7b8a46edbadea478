import type { AuditFilter, AuditRecord, DeliveryStatus, OutboxEvent, RequestTokenRecord, ServiceAccess, ServiceProtocol, ServiceRecord, UserRecord } from './store/store.js'

/** The domain records the gateway works with (defined with the store contract that keeps them). */
export type { RequestTokenRecord, ServiceRecord, UserRecord }

/** A user as the decorator API returns it: everything but the password hash. */
export type GatewayUser = Omit<UserRecord, 'passwordHash'>

/** A registered service as the decorator API returns it: no secrets. */
export type GatewayService = Omit<ServiceRecord, 'tokenHash' | 'signingSecret' | 'djangoToken' | 'previous'> & {
  /** While a secret rotation's overlap runs: when the old secrets stop working (ms); else null. */
  overlapUntil: number | null
}

/** Input of `fastify.ssoGateway.createUser`. */
export interface CreateUserInput {
  /** Canonicalised (NFKC, lower case); 1 to 150 letters, digits or `. _ @ + -`. */
  username: string
  /** Omit for an account that cannot sign in with a password. */
  password?: string
  /** @default true */
  isActive?: boolean
  /** @default false */
  isStaff?: boolean
  /** @default false */
  isSuperuser?: boolean
  email?: string | null
  displayName?: string | null
  /** Extra attributes sent to services in `update_account`. */
  attributes?: Record<string, unknown>
}

/** Input of `fastify.ssoGateway.updateUser`: any subset of the user's fields. */
export type UpdateUserInput = Partial<Omit<CreateUserInput, 'username'>>

/** Input of `fastify.ssoGateway.registerService`. */
export interface RegisterServiceInput {
  /** Unique name, shown to users. */
  name: string
  /** The service's public base URL (the browser comes back to `<baseUrl>/sso/accept/`). */
  baseUrl: string
  /** Where events are delivered, server to server. @default `<baseUrl>/sso/event/` */
  eventUrl?: string
  /**
   * The dialect the service speaks: `'fastify-sso'`, `'django-sso-1'` (django-sso 1.x) or
   * `'django-sso-2'` (django-sso 2.x and 3.x). A django-sso service gets exactly the events
   * and keys its release takes, its secret in each event body, its `update_account` before
   * the browser is sent back at sign-in, and no optional field unless `fields` asks (2.x
   * only). `'django-sso'` is kept as another name for `'django-sso-1'`. @default 'fastify-sso'
   */
  protocol?: ServiceProtocol | 'django-sso'
  /** Use this secret instead of generating one (e.g. from configuration). At least 32 characters. */
  secret?: string
  /** Use this signing secret (`whsec_...`) instead of generating one. */
  signingSecret?: string
  /** A sensitive service: every sign-in to it asks for the password, even within an SSO session. @default false */
  requireFreshLogin?: boolean
  /** Who may use it: listed usernames and/or groups. @default null (everyone) */
  access?: AccessInput | null
  /**
   * Optional account fields it receives in `update_account` and `/sso/get/`: `email`,
   * `display_name`, `groups`, or names of custom attributes. `user_id`, `username` and the
   * three flags always go. @default ['email', 'display_name', 'groups']
   */
  fields?: string[] | null
  /** The name pages show for it (e.g. "Billing"), at most 100 characters. @default null (the `name`) */
  displayName?: string | null
  /**
   * A logo pages show next to its name: an absolute http(s) URL, or a path starting with `/`
   * (served by the gateway's app). @default null (no logo)
   */
  logoUrl?: string | null
}

/** An access rule as given: a user passes when listed, or a member of a listed group. */
export interface AccessInput {
  users?: string[]
  groups?: string[]
}

/** Changes to a registered service (`updateService`). */
export type UpdateServiceInput = Partial<Pick<RegisterServiceInput, 'baseUrl' | 'eventUrl' | 'requireFreshLogin' | 'access' | 'fields' | 'signingSecret' | 'displayName' | 'logoUrl'>> & {
  enabled?: boolean
}

/** One SSO session of a user, as `listSessions` shows it. */
export interface SsoSessionInfo {
  /** The SSO session id (what `revokeSession` takes; services see it as `ssoSession`). */
  id: string
  createdAt: number
  lastSeenAt: number
  userAgent: string | null
  ip: string | null
  /** Names of the services this session signed in to. */
  services: string[]
}

/** Which sessions a password change ends. */
export interface ChangePasswordOptions {
  /** `none`, `others` (all but `keepSsoSession`), or `all`. @default 'others' */
  endSessions?: 'none' | 'others' | 'all'
  /** The SSO session to keep with `endSessions: 'others'`. */
  keepSsoSession?: string
}

/** The app's own access rule, checked after the service's stored rule allowed the user. */
export type AccessCheck = (user: GatewayUser & { groups: string[] }, service: GatewayService) => boolean | Promise<boolean>

export type { ServiceAccess }

/** What `registerService` returns: the only time the secret is visible. */
export interface RegisteredService {
  service: GatewayService
  /** The service's secret: give it to the service as its `token` option. */
  secret: string
  /** The service's Standard Webhooks secret: its `signingSecret` option. */
  signingSecret: string
}

/** Which users `listUsers` returns. */
export interface ListUsersOptions {
  /** Only usernames after this one (the next page). @default '' */
  after?: string
  /** Only usernames starting with this. @default '' */
  prefix?: string
  /** At most this many (1 to 1000). @default 100 */
  limit?: number
}

/** What `rotateSecrets` changes. */
export interface RotateSecretsInput {
  /** Rotate the call secret (the service's `token`). @default true */
  secret?: boolean
  /** Rotate the signing secret (`whsec_...`). @default true */
  signingSecret?: boolean
  /**
   * How long the old secrets keep working, in ms: the old call secret is still accepted and
   * events are signed with both signing secrets, so the service can switch to the new ones
   * within the window. 0 switches at once. @default 86_400_000 (24 h)
   */
  overlap?: number
}

/** What `rotateSecrets` returns: the only time the new secrets are visible. */
export interface RotatedSecrets {
  service: GatewayService
  /** The new call secret, if it was rotated. */
  secret?: string
  /** The new signing secret, if it was rotated. */
  signingSecret?: string
  /** When the old secrets stop working (ms), or null with no overlap. */
  overlapUntil: number | null
}

export type { AuditFilter, AuditRecord }

/** The decorator API: `fastify.ssoGateway`. */
export interface SsoGatewayApi {
  /** Registers a service and returns its secrets. */
  registerService: (input: RegisterServiceInput) => Promise<RegisteredService>
  /** A registered service by name, or null. */
  getService: (name: string) => Promise<GatewayService | null>
  /** Every registered service. */
  listServices: () => Promise<GatewayService[]>
  /** Enables or disables a service; a disabled service's secret is refused like a wrong one. */
  setServiceEnabled: (name: string, enabled: boolean) => Promise<GatewayService>
  /** Changes a service's URLs, access rule, fields or fresh-login requirement. */
  updateService: (name: string, patch: UpdateServiceInput) => Promise<GatewayService>
  /**
   * New secrets for a service, shown once; the old ones keep working for `overlap` ms (the
   * old call secret is accepted, events are signed with both signing secrets).
   */
  rotateSecrets: (name: string, input?: RotateSecretsInput) => Promise<RotatedSecrets>
  /** The audit log, newest first: every filter given must match. @default limit 100 (at most 1000) */
  auditLog: (filter?: Partial<AuditFilter>) => Promise<AuditRecord[]>
  /** Creates a user. */
  createUser: (input: CreateUserInput) => Promise<GatewayUser>
  /** Users by username, a page at a time. */
  listUsers: (options?: ListUsersOptions) => Promise<GatewayUser[]>
  /** A user by (any spelling of) username, or null. */
  getUser: (username: string) => Promise<GatewayUser | null>
  /** Changes a user and pushes `update_account` to every enabled service. */
  updateUser: (username: string, patch: UpdateUserInput) => Promise<GatewayUser>
  /** Disables a user: `update_account` with `is_active: false`, and signs them out everywhere. */
  disableUser: (username: string) => Promise<GatewayUser>
  /** Ends every session of the user at the gateway and tells every enabled service. Returns gateway sessions ended. */
  logoutUser: (username: string) => Promise<number>
  /** Changes the username (the user id stays): `rename_account` to every enabled service. */
  renameUser: (username: string, newUsername: string) => Promise<GatewayUser>
  /** Deletes a user: signed out everywhere, `delete_account` to every enabled service. */
  deleteUser: (username: string) => Promise<void>
  /** Sets a new password and ends sessions as asked (by default every other SSO session). Returns SSO sessions ended. */
  changePassword: (username: string, password: string, options?: ChangePasswordOptions) => Promise<number>
  /** The user's live SSO sessions: device, IP, started, last seen, services reached. */
  listSessions: (username: string) => Promise<SsoSessionInfo[]>
  /** Ends one SSO session of the user (at the gateway and every service it reached). False if it was not theirs or not live. */
  revokeSession: (username: string, ssoSession: string) => Promise<boolean>
  /** Ends every SSO session of the user but `keepSsoSession`. Returns how many ended. */
  revokeOtherSessions: (username: string, keepSsoSession: string) => Promise<number>
  /** Groups, for access rules and the `groups` field. */
  groups: {
    create: (name: string) => Promise<void>
    delete: (name: string) => Promise<boolean>
    list: () => Promise<string[]>
    addMember: (group: string, username: string) => Promise<void>
    removeMember: (group: string, username: string) => Promise<void>
    members: (group: string) => Promise<GatewayUser[]>
    /** The groups a user belongs to. */
    of: (username: string) => Promise<string[]>
  }
  /** Event delivery: status per service, dead events, replay. */
  events: {
    status: () => Promise<DeliveryStatus[]>
    dead: (limit?: number) => Promise<OutboxEvent[]>
    replay: (id: string) => Promise<boolean>
    /** Delivers due events now and waits for the run to finish. */
    flush: () => Promise<void>
  }
}
