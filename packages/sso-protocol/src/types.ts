/**
 * The account a gateway hands to a service: django-sso's fields first
 * (`username` and the three flags); anything else is an extra attribute that
 * django-sso clients ignore.
 */
export interface SsoAccount {
  username: string
  is_active: boolean
  is_staff: boolean
  is_superuser: boolean
  email?: string | null
  display_name?: string | null
  [attribute: string]: unknown
}

/** Sent at every sign-in to a service and whenever the account changes. */
export interface UpdateAccountEvent extends SsoAccount {
  type: 'update_account'
  /** The service's secret: only in events sent to services registered as django-sso ones. */
  token?: string
}

/** Sent when a user's sessions end (logout, disabling). */
export interface DeauthenticateEvent {
  type: 'deauthenticate'
  username: string
  /** Present when only one SSO session ends, absent when every session of the user ends. */
  sso_session?: string
  token?: string
}

/** Every event a gateway sends to a service's `/sso/event/`. */
export type SsoEvent = UpdateAccountEvent | DeauthenticateEvent

/** `POST /sso/obtain/` success body. */
export interface ObtainResponse {
  token: string
}

/** `POST /sso/get/` success body. django-sso reads the first three fields. */
export interface GetResponse {
  authenticated: true
  user_identy: string
  next_url: string
  /** The account's attributes, as in `update_account` (without `type`). */
  user: SsoAccount
  /** Id of the gateway browser session the sign-in came from. */
  sso_session: string
  /** When that gateway session ends at the latest (ms since the epoch): a service session must end by then too. */
  sso_session_ends_at: number
}

/** `POST /sso/make_used/` and `/sso/deauthenticate/` success body. */
export interface OkResponse {
  ok: true
}

/** Every error a protocol endpoint answers, with a 4xx or 5xx status. */
export interface ErrorResponse {
  error: string
  /** A stable machine-readable code, e.g. `FST_SSO_GATEWAY_PENDING`. */
  code?: string
}
