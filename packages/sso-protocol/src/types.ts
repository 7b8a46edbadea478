/**
 * The account a gateway hands to a service: django-sso's fields first
 * (`username` and the three flags); anything else is an extra attribute that
 * django-sso clients ignore.
 */
export interface SsoAccount {
  /** The user's stable id at the gateway: never changes, even when the username does. Absent from django-sso gateways. */
  user_id?: string
  username: string
  is_active: boolean
  is_staff: boolean
  is_superuser: boolean
  email?: string | null
  display_name?: string | null
  [attribute: string]: unknown
}

/** Sent at every sign-in to a service and whenever the account changes (`is_active: false` when disabled). */
export interface UpdateAccountEvent extends SsoAccount {
  type: 'update_account'
  /** The fields that changed, when the event follows a change (absent at sign-in). */
  changed?: string[]
  /** The service's secret: only in events sent to services registered as django-sso ones. */
  token?: string
}

/** Why sessions end, in `deauthenticate` events. */
export type DeauthenticateReason =
  | 'logout' | 'logout_everywhere' | 'expired' | 'revoked' | 'password_changed' | 'disabled' | 'deleted'

/** Sent when sessions end: one SSO session (`sso_session` present) or every session of the user. */
export interface DeauthenticateEvent {
  type: 'deauthenticate'
  username: string
  user_id?: string
  /** Present when only one SSO session ends, absent when every session of the user ends. */
  sso_session?: string
  reason?: DeauthenticateReason
  token?: string
}

/** Sent when a user's username changes: services re-key the local account, they do not create another. */
export interface RenameAccountEvent {
  type: 'rename_account'
  /** Absent when the event came from a django-sso 2.x/3.x gateway (`change_user_identy`). */
  user_id?: string
  /** The new username. */
  username: string
  old_username: string
  token?: string
}

/** Sent when a user is deleted at the gateway (after `deauthenticate`). */
export interface DeleteAccountEvent {
  type: 'delete_account'
  /** Absent when the event came from a django-sso gateway (`delete_user`). */
  user_id?: string
  username: string
  token?: string
}

/** Every event a gateway sends to a service's `/sso/event/`. */
export type SsoEvent = UpdateAccountEvent | DeauthenticateEvent | RenameAccountEvent | DeleteAccountEvent

/** How a service asks for a sign-in (`prompt` in `/sso/obtain/`): `none` never shows a form, `login` always does. */
export type SsoPrompt = 'none' | 'login'

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
  /** When the user last entered their password in that gateway session (ms since the epoch). */
  auth_time: number
}

/**
 * `POST /sso/get/` answer for a passive request (`prompt=none`) when the browser is not
 * signed in at the gateway: the service continues anonymously. The token is spent.
 */
export interface GetDeclinedResponse {
  authenticated: false
  reason: 'login_required'
}

/** `POST /sso/accounts/` (resync) success body: one page of the accounts the service knows. */
export interface AccountsPageResponse {
  /** Current state of each account; deleted ones are `{ user_id, username, deleted: true }`. */
  accounts: Array<SsoAccount | { user_id: string, username: string, deleted: true }>
  /** Pass as `cursor` to get the next page; null on the last page. */
  next_cursor: string | null
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
