import type { DjangoSsoDialect, SsoPrompt } from 'fastify-sso-protocol'

/** A gateway user. `id` never changes; `username` is canonical (see `canonicalUsername`). */
export interface UserRecord {
  id: string
  username: string
  /** argon2id PHC string, or null for an account that cannot sign in with a password. */
  passwordHash: string | null
  isActive: boolean
  isStaff: boolean
  isSuperuser: boolean
  email: string | null
  displayName: string | null
  /** Free-form extra attributes, sent to services in `update_account`. */
  attributes: Record<string, unknown>
  createdAt: number
  updatedAt: number
}

/** Fields a caller may change on a user. */
export type UserPatch = Partial<Pick<UserRecord, 'username' | 'passwordHash' | 'isActive' | 'isStaff' | 'isSuperuser' | 'email' | 'displayName' | 'attributes'>>

/**
 * Which protocol dialect a registered service speaks: `fastify-sso`, `django-sso-1` (a
 * django-sso 1.x service) or `django-sso-2` (django-sso 2.x and 3.x). Each gets exactly the
 * events and keys its release takes (see `djangoEventBody` in fastify-sso-protocol).
 */
export type ServiceProtocol = 'fastify-sso' | DjangoSsoDialect

/** A registered service. */
export interface ServiceRecord {
  id: string
  /** Unique human name, shown on pages. */
  name: string
  /** Public base URL the browser is sent back to (`<baseUrl>/sso/accept/`). */
  baseUrl: string
  /** Where events are delivered (server to server). */
  eventUrl: string
  /** SHA-256 of the service secret (the secret itself is never stored). */
  tokenHash: string
  /** Standard Webhooks secret events are signed with. */
  signingSecret: string
  /**
   * The secret itself, kept only for django-sso services, whose events carry it in the
   * body. Null for fastify-sso services.
   */
  djangoToken: string | null
  protocol: ServiceProtocol
  enabled: boolean
  /** A sensitive service: every sign-in to it asks for the password, even in an SSO session. */
  freshLogin: boolean
  /** Who may use the service: null for everyone, else the listed user ids and group names. */
  access: ServiceAccess | null
  /** Optional account fields the service receives (e.g. `email`, `groups`, custom attributes); null for the default set. */
  fields: string[] | null
  createdAt: number
}

/** Access rule of a service: a user passes when listed, or a member of a listed group. */
export interface ServiceAccess {
  users: string[]
  groups: string[]
}

/** Fields a caller may change on a service. */
export type ServicePatch = Partial<Pick<ServiceRecord, 'baseUrl' | 'eventUrl' | 'tokenHash' | 'signingSecret' | 'djangoToken' | 'enabled' | 'freshLogin' | 'access' | 'fields'>>

/** A service an SSO session reached, and when last. */
export interface SsoSessionService {
  serviceId: string
  userId: string
  lastAt: number
}

/** State of an authentication request token (`declined`: a passive request met no signed-in browser). */
export type RequestTokenStatus = 'pending' | 'authenticated' | 'declined' | 'used'

/** An authentication request (django-sso's AuthenticationRequest), keyed by the token's hash. */
export interface RequestTokenRecord {
  hash: string
  serviceId: string
  nextUrl: string
  status: RequestTokenStatus
  userId: string | null
  ssoSession: string | null
  /** When the gateway session that authenticated the request ends at the latest (ms), or null. */
  sessionEndsAt: number | null
  /** `none`: never show a form; `login`: always ask for the password; null: as needed. */
  prompt: SsoPrompt | null
  /** When the user last entered their password in that gateway session (ms), or null. */
  authAt: number | null
  /**
   * SHA-256 of the one-time code given to the browser that completed the request, which the
   * service must present with the token; null for django-sso services (they cannot).
   */
  codeHash: string | null
  expiresAt: number
  createdAt: number
}

/** A request token to store. */
export type NewRequestToken = Pick<RequestTokenRecord, 'hash' | 'serviceId' | 'nextUrl' | 'prompt' | 'expiresAt' | 'createdAt'>

/** Who authenticated a request token, from which gateway session, and the token's new expiry. */
export interface TokenAuthentication {
  userId: string
  ssoSession: string
  /** When that gateway session ends at the latest (ms). */
  sessionEndsAt: number
  /** When the user last entered their password in that session (ms). */
  authAt: number
  /** SHA-256 of the code put in the browser's redirect, or null. */
  codeHash: string | null
  /** The token's expiry once authenticated (ms). */
  expiresAt: number
}

/** An event waiting in (or gone through) the outbox. */
export interface OutboxEvent {
  /** The `webhook-id`: the same on every attempt. */
  id: string
  /** Insertion order, used to keep events in order per (service, user). */
  seq: number
  serviceId: string
  /** The user the event is about, for ordering. */
  userKey: string
  /** The exact JSON body to send. */
  payload: string
  status: 'pending' | 'delivered' | 'dead'
  attempts: number
  nextAttemptAt: number
  lastError: string | null
  createdAt: number
}

/** An event to put in the outbox. */
export interface NewOutboxEvent {
  id: string
  serviceId: string
  userKey: string
  payload: string
}

/** How delivery stands for one service. */
export interface DeliveryStatus {
  serviceId: string
  pending: number
  dead: number
  /** When the oldest still-failing pending event first failed, or null. */
  failingSince: number | null
}

/** The async store contract both SQLite (default) and later PostgreSQL implement. */
export interface GatewayStore {
  /** Creates a user; throws `USER_EXISTS` if the canonical username is taken. */
  createUser: (user: Omit<UserRecord, 'createdAt' | 'updatedAt'>) => Promise<UserRecord>
  getUserById: (id: string) => Promise<UserRecord | null>
  getUserByUsername: (username: string) => Promise<UserRecord | null>
  /**
   * Changes a user and, in the same transaction, queues the events `events(user)` returns.
   * Returns null if there is no such user.
   */
  updateUser: (id: string, patch: UserPatch, events?: (user: UserRecord) => NewOutboxEvent[]) => Promise<UserRecord | null>

  createService: (service: Omit<ServiceRecord, 'createdAt'>) => Promise<ServiceRecord>
  getServiceById: (id: string) => Promise<ServiceRecord | null>
  getServiceByName: (name: string) => Promise<ServiceRecord | null>
  getServiceByTokenHash: (tokenHash: string) => Promise<ServiceRecord | null>
  listServices: () => Promise<ServiceRecord[]>
  updateService: (id: string, patch: ServicePatch) => Promise<ServiceRecord | null>

  createRequestToken: (token: NewRequestToken) => Promise<void>
  getRequestToken: (hash: string, now: number) => Promise<RequestTokenRecord | null>
  /**
   * Atomically moves a live pending token to authenticated for a user, with a new expiry,
   * and records that the user signed in to the token's service. False if it was not pending.
   */
  authenticateRequestToken: (hash: string, by: TokenAuthentication, now: number) => Promise<boolean>
  /**
   * Atomic check-and-set: an authenticated, unexpired token of `serviceId` whose browser code
   * (if it has one) hashes to `codeHash` becomes used and is returned; anything else returns
   * null. Exactly one of many concurrent calls wins.
   */
  consumeRequestToken: (hash: string, serviceId: string, now: number, codeHash: string | null) => Promise<RequestTokenRecord | null>
  /** Makes a token unusable (e.g. another service tried it). */
  burnRequestToken: (hash: string) => Promise<void>
  /** Deletes tokens that expired before `now`; returns how many. */
  pruneRequestTokens: (now: number) => Promise<number>
  /** Whether `userId` ever signed in to `serviceId`. */
  hasSignedIn: (serviceId: string, userId: string) => Promise<boolean>
  /** A passive request met no signed-in browser: pending becomes declined. False if it was not pending. */
  declineRequestToken: (hash: string, now: number) => Promise<boolean>
  /** Atomically spends a declined token of `serviceId`; false if there was none. */
  spendDeclinedToken: (hash: string, serviceId: string, now: number) => Promise<boolean>
  /** The services an SSO session reached (recorded when a request token is authenticated). */
  ssoSessionServices: (ssoSession: string) => Promise<SsoSessionService[]>
  /** Every SSO session of a user that reached a service. */
  ssoSessionsOfUser: (userId: string) => Promise<string[]>
  /** Forgets an ended SSO session. */
  forgetSsoSession: (ssoSession: string) => Promise<void>
  /** Deletes a user and, in the same transaction, queues `events`. False if there was no such user. */
  deleteUser: (id: string, events: NewOutboxEvent[]) => Promise<boolean>
  /** Groups: created on demand, deleted with their memberships. */
  createGroup: (name: string) => Promise<void>
  deleteGroup: (name: string) => Promise<boolean>
  listGroups: () => Promise<string[]>
  setGroupMember: (group: string, userId: string, member: boolean) => Promise<void>
  groupsOfUser: (userId: string) => Promise<string[]>
  groupMembers: (group: string) => Promise<UserRecord[]>
  /**
   * One page of the users who ever signed in to a service, by user id after `after`, with the
   * username the service last saw; `user` is null for a user deleted since.
   */
  serviceUsers: (serviceId: string, after: string, limit: number) => Promise<Array<{ userId: string, lastUsername: string, user: UserRecord | null }>>

  /** Queues events outside any other change. */
  enqueueEvents: (events: NewOutboxEvent[]) => Promise<void>
  /**
   * Claims up to `limit` due events under a lease, never one that has an earlier pending
   * event for the same (service, user). `onlyIds` restricts the claim to those events.
   */
  claimEvents: (now: number, leaseMs: number, limit: number, onlyIds?: string[]) => Promise<OutboxEvent[]>
  /**
   * Makes the pending, unclaimed events of one (service, user) due at `now` and returns the
   * ids of all its pending events, oldest first (a sign-in waiting on them tries them at once).
   */
  expediteEvents: (serviceId: string, userKey: string, now: number) => Promise<string[]>
  /** Marks a claimed event delivered. */
  completeEvent: (id: string) => Promise<void>
  /** Records a failed attempt: retried at `nextAttemptAt`, or dead-lettered when null. */
  failEvent: (id: string, error: string, nextAttemptAt: number | null) => Promise<void>
  /** Gives a claimed event back without counting an attempt (shutdown). */
  releaseEvent: (id: string) => Promise<void>
  /** Events in a state, oldest first. */
  listEvents: (status: OutboxEvent['status'], limit: number) => Promise<OutboxEvent[]>
  /** Deletes delivered events created before `before` (ms); returns how many. */
  pruneDeliveredEvents: (before: number) => Promise<number>
  /** Puts a dead event back in the queue; false if it was not dead. */
  replayEvent: (id: string, now: number) => Promise<boolean>
  deliveryStatus: () => Promise<DeliveryStatus[]>

  /**
   * The value kept under `key`, made with `create()` and stored on first use (the first writer
   * wins). Holds the session secret generated when the app gives none; a store without it
   * needs an explicit `sessionSecret`.
   */
  setting?: (key: string, create: () => string) => Promise<string>

  /** Releases the database. */
  close: () => Promise<void>
}
