import type { Session } from 'fastify'
import type { DjangoSsoDialect, SessionIndex, SsoPrompt } from 'fastify-sso-protocol'

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
  /** Name shown on pages (`name` when null), at most 100 characters. */
  displayName: string | null
  /** Logo shown on pages: an absolute http(s) URL or a path on the gateway; null for none. */
  logoUrl: string | null
  /**
   * The secrets a rotation replaced, still accepted (the call secret) and still signed with
   * (the signing secret) until `until`; null when no rotation overlap is running.
   */
  previous: PreviousSecrets | null
  createdAt: number
}

/** What a secret rotation with an overlap window keeps of the old secrets, until `until` (ms). */
export interface PreviousSecrets {
  /** SHA-256 of the old call secret, still accepted; null if the call secret was not rotated. */
  tokenHash: string | null
  /** The old signing secret, still signed with beside the new one; null if it was not rotated. */
  signingSecret: string | null
  until: number
}

/** A service row as `ServiceStore.create` takes it (`previous` defaults to null). */
export type NewService = Omit<ServiceRecord, 'createdAt' | 'previous'> & { previous?: PreviousSecrets | null }

/** Access rule of a service: a user passes when listed, or a member of a listed group. */
export interface ServiceAccess {
  users: string[]
  groups: string[]
}

/** Fields a caller may change on a service. */
export type ServicePatch = Partial<Pick<ServiceRecord, 'baseUrl' | 'eventUrl' | 'tokenHash' | 'signingSecret' | 'djangoToken' | 'enabled' | 'freshLogin' | 'access' | 'fields' | 'displayName' | 'logoUrl' | 'previous'>>

/** A service an SSO session reached, and when last. */
export interface SsoSessionService {
  serviceId: string
  userId: string
  lastAt: number
}

/**
 * State of an authentication request token (`declined`: a passive request met no signed-in browser).
 * The transitions are listed once, in `request-tokens.ts`.
 */
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

/** A user row as `UserStore.create` takes it. */
export type NewUser = Omit<UserRecord, 'createdAt' | 'updatedAt'>

/** One SSO session that a change ended, and the services it had reached (their ids). */
export interface EndedSsoSession {
  id: string
  userId: string
  services: string[]
}

/** What ending sessions ended: browser sessions deleted, SSO sessions forgotten (their tokens burnt). */
export interface EndedSessions {
  browserSessions: number
  ssoSessions: EndedSsoSession[]
}

/**
 * Events a change causes, computed inside its transaction from what the change did. A store
 * writes them in the same transaction as the change: both happen, or neither.
 */
export type EventsOf<T> = (result: T) => NewOutboxEvent[]

/** Sessions of the changed user that a user change ends in the same transaction. */
export interface EndUserSessions {
  /** Keep this SSO session (a password change keeping the current device). */
  exceptSsoSession?: string | undefined
}

/** Users. */
export interface UserStore {
  /** Creates a user; rejects with `USER_EXISTS` if the canonical username is taken. */
  create: (user: NewUser) => Promise<UserRecord>
  byId: (id: string) => Promise<UserRecord | null>
  byUsername: (username: string) => Promise<UserRecord | null>
  /** One page of users by username: those after `after` (binary order), at most `limit`; `prefix` keeps names starting with it. */
  list: (after: string, limit: number, prefix?: string) => Promise<UserRecord[]>
  /**
   * Changes a user and, in the same transaction, ends its sessions as `end` says (every one,
   * or every one but `exceptSsoSession`) and queues the events `events(user, ended)` returns.
   * A rename also re-keys what services last knew the user as. Resolves to null (nothing
   * written) if there is no such user; rejects with `USER_EXISTS` on a taken name.
   */
  update: (id: string, patch: UserPatch, events?: (user: UserRecord, ended: EndedSessions) => NewOutboxEvent[], end?: EndUserSessions) =>
  Promise<UserRecord | null>
  /**
   * Deletes a user with every session of theirs (browser and SSO sessions, tokens burnt) and, in
   * the same transaction, queues `events`. Null (nothing written) if there was no such user.
   */
  delete: (id: string, events: EventsOf<EndedSessions>) => Promise<EndedSessions | null>
}

/** Groups: created on demand, deleted with their memberships. */
export interface GroupStore {
  create: (name: string) => Promise<void>
  delete: (name: string) => Promise<boolean>
  list: () => Promise<string[]>
  /**
   * Adds or removes a member and, in the same transaction, queues `events(groups)` (the user's
   * groups after the change). Rejects with `INVALID_GROUP` if the group does not exist.
   */
  setMember: (group: string, userId: string, member: boolean, events: EventsOf<string[]>) => Promise<string[]>
  ofUser: (userId: string) => Promise<string[]>
  members: (group: string) => Promise<UserRecord[]>
}

/** A page of the users who ever signed in to a service (`ServiceStore.users`). */
export interface ServiceUser {
  userId: string
  /** The username the service last saw. */
  lastUsername: string
  /** Null for a user deleted since. */
  user: UserRecord | null
}

/** Registered services, and who signed in to each. */
export interface ServiceStore {
  /** Creates a service; rejects with `SERVICE_EXISTS` if the name (or the secret) is taken. */
  create: (service: NewService) => Promise<ServiceRecord>
  byId: (id: string) => Promise<ServiceRecord | null>
  byName: (name: string) => Promise<ServiceRecord | null>
  /** The service whose call secret hashes to `tokenHash`, or whose `previous.tokenHash` does (the gateway checks `until`). */
  byTokenHash: (tokenHash: string) => Promise<ServiceRecord | null>
  /** Every service, oldest first. */
  list: () => Promise<ServiceRecord[]>
  /** Changes a service and, in the same transaction, queues `events(service)`. Null if there is no such service. */
  update: (id: string, patch: ServicePatch, events?: EventsOf<ServiceRecord>) => Promise<ServiceRecord | null>
  /** Whether `userId` ever signed in to `serviceId` (recorded by `RequestTokenStore.authenticate`). */
  hasUser: (serviceId: string, userId: string) => Promise<boolean>
  /** One page of the users who ever signed in to a service, by user id after `after`. */
  users: (serviceId: string, after: string, limit: number) => Promise<ServiceUser[]>
}

/**
 * Authentication request tokens. The states and transitions are owned by `request-tokens.ts`;
 * each method here is one atomic check-and-set of one transition.
 */
export interface RequestTokenStore {
  /** Stores a new pending token. */
  create: (token: NewRequestToken) => Promise<void>
  /** A token that has not expired at `now`, in any state, or null. */
  get: (hash: string, now: number) => Promise<RequestTokenRecord | null>
  /**
   * pending → authenticated, for a live token, with a new expiry; records in the same
   * transaction that the user signed in to the token's service, that the SSO session reached
   * it, and queues `events(serviceId)`. False (nothing written) if the token was not pending,
   * or its SSO session has ended.
   */
  authenticate: (hash: string, by: TokenAuthentication, now: number, events?: EventsOf<string>) => Promise<boolean>
  /** pending → declined (a passive request met no signed-in browser). False if it was not pending. */
  decline: (hash: string, now: number) => Promise<boolean>
  /** declined → used, for the token's own service. False if there was no such token. */
  spendDeclined: (hash: string, serviceId: string, now: number) => Promise<boolean>
  /**
   * authenticated → used: a live token of `serviceId` whose code (if it has one) hashes to
   * `codeHash` becomes used and is returned; anything else returns null. Exactly one of many
   * concurrent calls wins.
   */
  consume: (hash: string, serviceId: string, now: number, codeHash: string | null) => Promise<RequestTokenRecord | null>
  /** any → used: makes a token unusable (e.g. another service tried it). */
  burn: (hash: string) => Promise<void>
  /** Deletes tokens that expired before `now`; returns how many. */
  prune: (now: number) => Promise<number>
}

/** Which services each SSO session reached (recorded when a request token is authenticated). */
export interface SsoSessionStore {
  services: (ssoSession: string) => Promise<SsoSessionService[]>
}

/**
 * Gateway browser sessions (what @fastify/session keeps), indexed by user and SSO session.
 * A session deleted by any of these methods is never written back by `set` (a request in
 * flight saving it late does not resurrect it).
 */
export interface BrowserSessionStore {
  /** A live session (not expired at `now`), or null. */
  get: (sid: string, now: number) => Promise<Session | null>
  /** Inserts or replaces a session with its index; does nothing for a session deleted before. */
  set: (sid: string, session: Session, index: SessionIndex) => Promise<void>
  /** Deletes one session. */
  destroy: (sid: string) => Promise<void>
  /**
   * Ends every session of a user (but those of `exceptSsoSession`): deletes the browser
   * sessions, forgets the SSO sessions, burns their authenticated tokens and queues
   * `events(ended)`, all in one transaction.
   */
  destroyByUser: (userId: string, events: EventsOf<EndedSessions>, exceptSsoSession?: string) => Promise<EndedSessions>
  /** The same for one SSO session. */
  destroyBySsoSession: (ssoSession: string, events: EventsOf<EndedSessions>) => Promise<EndedSessions>
  /** The live sessions of a user. */
  listByUser: (userId: string, now: number) => Promise<Session[]>
  /**
   * Marks every live session of an SSO session as used at `now` (`seenAt`), pushing its expiry
   * to `now + idleTimeout` but never past `createdAt + absoluteTimeout`. Returns how many were live.
   */
  touch: (ssoSession: string, now: number, lifetime: { idleTimeout: number, absoluteTimeout: number }) => Promise<number>
  /**
   * Deletes up to `limit` sessions expired at `now`, oldest first, and returns their index, so
   * the gateway can end their SSO sessions at the services.
   */
  takeExpired: (now: number, limit: number) => Promise<Array<{ user: string | null, ssoSession: string | null }>>
}

/** The event outbox: durable, leased, in order per (service, user). */
export interface OutboxStore {
  /** Queues events outside any other change. Rejects (nothing written) if an id is already queued. */
  enqueue: (events: NewOutboxEvent[]) => Promise<void>
  /**
   * Claims up to `limit` due events under a lease, never one that has an earlier pending
   * event for the same (service, user). `onlyIds` restricts the claim to those events.
   */
  claim: (now: number, leaseMs: number, limit: number, onlyIds?: string[]) => Promise<OutboxEvent[]>
  /**
   * Makes the pending, unclaimed events of one (service, user) due at `now` and returns the
   * ids of all its pending events, oldest first (a sign-in waiting on them tries them at once).
   */
  expedite: (serviceId: string, userKey: string, now: number) => Promise<string[]>
  /**
   * Makes every pending, unclaimed event of a service due at `now` (the service is reachable
   * again); returns how many were waiting for a later attempt.
   */
  expediteService: (serviceId: string, now: number) => Promise<number>
  /** Marks a claimed event delivered. */
  complete: (id: string) => Promise<void>
  /** Records a failed attempt at `now`: retried at `nextAttemptAt`, or dead-lettered when null. */
  fail: (id: string, error: string, nextAttemptAt: number | null, now: number) => Promise<void>
  /** Gives a claimed event back without counting an attempt (shutdown). */
  release: (id: string) => Promise<void>
  /** Events in a state, oldest first. */
  list: (status: OutboxEvent['status'], limit: number) => Promise<OutboxEvent[]>
  /** Deletes delivered events created before `before` (ms); returns how many. */
  prune: (before: number) => Promise<number>
  /** Puts a dead event back in the queue; false if it was not dead. */
  replay: (id: string, now: number) => Promise<boolean>
  /** Pending and dead counts per service with any. */
  status: () => Promise<DeliveryStatus[]>
}

/** One entry of the audit log: who did what to whom, when. */
export interface AuditRecord {
  /** Increasing: a later record has a larger id. */
  id: number
  /** When it happened (ms). */
  at: number
  /** What happened: `login`, `login_failed`, `user_created`, `service_secret_rotated`, ... */
  kind: string
  /** Who did it: `admin:<username>` (console), `cli` (the sso-gateway CLI), `app` (code), or null (the user themselves). */
  actor: string | null
  /** The username it concerns, or null. */
  user: string | null
  /** The service name it concerns, or null. */
  service: string | null
  /** Further facts (never a secret or a password). */
  detail: Record<string, unknown>
}

/** An audit record to append. */
export type NewAuditRecord = Omit<AuditRecord, 'id'>

/** Which audit records `AuditStore.list` returns: every given filter must match. */
export interface AuditFilter {
  user?: string
  service?: string
  kind?: string
  /** At or after (ms). */
  since?: number
  /** Before (ms). */
  until?: number
  /** Only ids below this one (the next page). */
  beforeId?: number
  /** At most this many. */
  limit: number
}

/** The audit log: appended to, read newest first, pruned by age. */
export interface AuditStore {
  append: (records: NewAuditRecord[]) => Promise<void>
  /** Matching records, newest first. */
  list: (filter: AuditFilter) => Promise<AuditRecord[]>
  /** Deletes records older than `before` (ms); returns how many. */
  prune: (before: number) => Promise<number>
}

/**
 * The gateway's storage: one object, one store per aggregate, every method async. Every
 * change that causes events takes them and writes both in one transaction. SQLite (default),
 * memory (development, tests) and your own (docs/writing-a-store.md) implement it, and all run
 * the same conformance suite (test/store-contract/).
 */
export interface GatewayStore {
  readonly users: UserStore
  readonly groups: GroupStore
  readonly services: ServiceStore
  readonly tokens: RequestTokenStore
  readonly ssoSessions: SsoSessionStore
  readonly sessions: BrowserSessionStore
  readonly outbox: OutboxStore
  readonly audit: AuditStore
  /**
   * The value kept under `key`, made with `create()` and stored on first use (the first writer
   * wins). Holds the session secret generated when the app gives none; a store without it
   * needs an explicit `sessionSecret`.
   */
  setting?: (key: string, create: () => string) => Promise<string>
  /** Releases the database. Closing twice is harmless. */
  close: () => Promise<void>
}
