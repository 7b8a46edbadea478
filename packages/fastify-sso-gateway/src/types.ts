import type { DeliveryStatus, OutboxEvent, ServiceProtocol, ServiceRecord, UserRecord } from './store/store.js'

/** A user as the decorator API returns it: everything but the password hash. */
export type GatewayUser = Omit<UserRecord, 'passwordHash'>

/** A registered service as the decorator API returns it: no secrets. */
export type GatewayService = Omit<ServiceRecord, 'tokenHash' | 'signingSecret' | 'djangoToken'>

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
  /** `'django-sso'` for a django-sso service: its events carry its secret in the body. @default 'fastify-sso' */
  protocol?: ServiceProtocol
  /** Use this secret instead of generating one (e.g. from configuration). At least 32 characters. */
  secret?: string
  /** Use this signing secret (`whsec_...`) instead of generating one. */
  signingSecret?: string
}

/** What `registerService` returns: the only time the secret is visible. */
export interface RegisteredService {
  service: GatewayService
  /** The service's secret: give it to the service as its `token` option. */
  secret: string
  /** The service's Standard Webhooks secret: its `signingSecret` option. */
  signingSecret: string
}

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
  /** Creates a user. */
  createUser: (input: CreateUserInput) => Promise<GatewayUser>
  /** A user by (any spelling of) username, or null. */
  getUser: (username: string) => Promise<GatewayUser | null>
  /** Changes a user and pushes `update_account` to every enabled service. */
  updateUser: (username: string, patch: UpdateUserInput) => Promise<GatewayUser>
  /** Disables a user: `update_account` with `is_active: false`, and signs them out everywhere. */
  disableUser: (username: string) => Promise<GatewayUser>
  /** Ends every session of the user at the gateway and tells every enabled service. Returns gateway sessions ended. */
  logoutUser: (username: string) => Promise<number>
  /** Event delivery: status per service, dead events, replay. */
  events: {
    status: () => Promise<DeliveryStatus[]>
    dead: (limit?: number) => Promise<OutboxEvent[]>
    replay: (id: string) => Promise<boolean>
    /** Delivers due events now and waits for the run to finish. */
    flush: () => Promise<void>
  }
}
