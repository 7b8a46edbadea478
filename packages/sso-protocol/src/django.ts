import { MAX_USERNAME_LENGTH } from './schemas.js'
import type { SsoAccount, SsoEvent, UpdateAccountEvent } from './types.js'

/**
 * The event dialects of django-sso services, by the release line that speaks them:
 * - `django-sso-1`: django-sso 1.x. `update_account` takes exactly `username`, `is_active`,
 *   `is_staff`, `is_superuser`; `deauthenticate` exactly `username`. Any other key makes the
 *   service refuse the event. No renames, no deletions.
 * - `django-sso-2`: django-sso 2.x and 3.x. `update_account` carries a `fields` object,
 *   `deauthenticate` and `delete_user` a `user_identy`, `change_user_identy` `old` and `new`,
 *   `update_fields` `fields` and `user_identities`.
 * Both take the service's token in the body as `token`.
 */
export type DjangoSsoDialect = 'django-sso-1' | 'django-sso-2'

/** The keys a django-sso 1.x `update_account` takes besides `type` and `token`. */
export const DJANGO_SSO_1_ACCOUNT_KEYS = ['username', 'is_active', 'is_staff', 'is_superuser'] as const

/** `update_fields` (django-sso 2.x/3.x): fields of several users changed at once. */
export interface UpdateFieldsEvent {
  type: 'update_fields'
  /** The changed fields, the same for every user listed. */
  fields: Record<string, unknown>
  usernames: string[]
}

/** Every event a service can receive, in this package's canonical shape. */
export type AnySsoEvent = SsoEvent | UpdateFieldsEvent

/** The 2.x `fields` object of an account: its username as `user_identy`, then the rest. */
function fieldsOf (event: UpdateAccountEvent): Record<string, unknown> {
  const { type: _t, token: _k, changed: _c, user_id: _u, username, sso_session: _s, ...rest } = event as UpdateAccountEvent & { sso_session?: unknown }
  return { user_identy: username, ...rest }
}

/**
 * The body a django-sso service of `dialect` takes for a canonical event, without the token
 * (the sender adds it): only the keys that release accepts. What a release cannot express is
 * said in the nearest way it understands, as documented in the root README:
 * - 1.x knows no rename or deletion: the old username's local account is disabled
 *   (`update_account` with `is_active: false`, which Django treats as signed out); the new
 *   username is created by the `update_account` of the next sign-in.
 * - Neither knows an SSO session: a `deauthenticate` of one SSO session ends every session of
 *   the user at a django-sso service.
 */
export function djangoEventBody (dialect: DjangoSsoDialect, event: SsoEvent): Record<string, unknown> {
  if (dialect === 'django-sso-1') {
    switch (event.type) {
      case 'update_account':
        return { type: 'update_account', username: event.username, is_active: event.is_active, is_staff: event.is_staff, is_superuser: event.is_superuser }
      case 'deauthenticate':
        return { type: 'deauthenticate', username: event.username }
      case 'rename_account':
        return { type: 'update_account', username: event.old_username, is_active: false }
      default:
        return { type: 'update_account', username: event.username, is_active: false }
    }
  }
  switch (event.type) {
    case 'update_account':
      return { type: 'update_account', fields: fieldsOf(event) }
    case 'deauthenticate':
      return { type: 'deauthenticate', user_identy: event.username }
    case 'rename_account':
      return { type: 'change_user_identy', old: event.old_username, new: event.username }
    default:
      return { type: 'delete_user', user_identy: event.username }
  }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function name (value: unknown, key: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_USERNAME_LENGTH) {
    throw new TypeError(`${key} must be a username (1 to ${MAX_USERNAME_LENGTH} characters)`)
  }
  return value
}

/**
 * Reads an event body of any dialect (fastify-sso, django-sso 1.x, django-sso 2.x/3.x) into
 * the canonical shape. `body` has passed `eventBodySchema`. Throws a TypeError naming what is
 * missing. A 2.x `update_account` without a flag leaves it out (`is_active` defaults to true
 * when the account is applied, the others to false), as 1.x does with a flag that is not a boolean.
 */
export function normalizeEvent (body: Record<string, unknown>): AnySsoEvent {
  const { token: _token, ...event } = body
  switch (event.type) {
    case 'update_account': {
      if (event.username !== undefined) return event as unknown as UpdateAccountEvent
      if (!isRecord(event.fields)) throw new TypeError('update_account needs username or fields')
      const { user_identy: identy, ...fields } = event.fields
      return { ...fields, type: 'update_account', username: name(identy, 'fields.user_identy') } as UpdateAccountEvent
    }
    case 'update_fields': {
      if (!isRecord(event.fields)) throw new TypeError('update_fields needs fields')
      const usernames = event.user_identities
      if (!Array.isArray(usernames) || usernames.length === 0) throw new TypeError('update_fields needs user_identities')
      const { user_identy: _u, username: _n, user_id: _i, ...fields } = event.fields
      return { type: 'update_fields', fields, usernames: usernames.map((u) => name(u, 'user_identities[]')) }
    }
    case 'deauthenticate':
      return { ...event, type: 'deauthenticate', username: name(event.username ?? event.user_identy, 'username') } as SsoEvent
    case 'delete_account':
    case 'delete_user':
      return { ...event, type: 'delete_account', username: name(event.username ?? event.user_identy, 'username') } as SsoEvent
    case 'rename_account':
      return { ...event, type: 'rename_account', username: name(event.username, 'username'), old_username: name(event.old_username, 'old_username') } as SsoEvent
    default:
      // change_user_identy (the schema allows no other type)
      return { type: 'rename_account', username: name(event.new, 'new'), old_username: name(event.old, 'old') } as SsoEvent
  }
}

/** Account data an `update_fields` leaves as it was: merged over the last account known. */
export function mergeFields (base: SsoAccount, fields: Record<string, unknown>): SsoAccount {
  return { ...base, ...fields, username: base.username } as SsoAccount
}
