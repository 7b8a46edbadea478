import {
  djangoEventBody, generateToken, type DeauthenticateEvent, type DeauthenticateReason, type DeleteAccountEvent, type RenameAccountEvent,
  type SsoAccount, type SsoEvent, type UpdateAccountEvent
} from 'fastify-sso-protocol'
import type { NewOutboxEvent, ServiceRecord, UserRecord } from '../store/store.js'

/** The optional account fields a fastify-sso service gets unless it is registered with its own `fields`. */
export const DEFAULT_FIELDS: readonly string[] = Object.freeze(['email', 'display_name', 'groups'])

/** A django-sso service: it takes only its release's keys, and its token in every event body. */
export function isDjango (service: Pick<ServiceRecord, 'protocol'>): boolean {
  return service.protocol !== 'fastify-sso'
}

/** Names no custom attribute may take: they are the protocol's own. */
export const RESERVED_FIELDS: ReadonlySet<string> = new Set(['type', 'token', 'user_id', 'username', 'is_active', 'is_staff', 'is_superuser',
  'sso_session', 'reason', 'changed', 'old_username', 'issued_at'])

/**
 * The account as one service sees it: the stable id, django-sso's fields, then only the
 * optional fields that service is configured for (`email`, `display_name`, `groups`, or a
 * custom attribute's name).
 */
export function accountFor (service: Pick<ServiceRecord, 'fields' | 'protocol'>, user: UserRecord, groups: readonly string[]): SsoAccount {
  const account: SsoAccount = {
    user_id: user.id,
    username: user.username,
    is_active: user.isActive,
    is_staff: user.isStaff,
    is_superuser: user.isSuperuser
  }
  // A django-sso service gets no optional field unless it asks (2.x only: 1.x refuses them).
  for (const field of service.fields ?? (isDjango(service) ? [] : DEFAULT_FIELDS)) {
    if (field === 'email') account.email = user.email
    else if (field === 'display_name') account.display_name = user.displayName
    else if (field === 'groups') account.groups = [...groups]
    else if (Object.hasOwn(user.attributes, field)) account[field] = user.attributes[field]
  }
  return account
}

/** An outbox entry for one service. Its secret never goes in the stored payload (see `bodyFor`). */
export function eventFor (service: ServiceRecord, userKey: string, body: SsoEvent): NewOutboxEvent {
  return { id: 'evt_' + generateToken(18), serviceId: service.id, userKey, payload: JSON.stringify(body) }
}

/**
 * The body actually sent. The outbox keeps the canonical event; a django-sso service gets it
 * in its release's dialect (only the keys it takes, see `djangoEventBody`) with its secret as
 * `token` (that is how it authenticates events), added only now so the outbox (and
 * `events.dead()`) never holds it. Every event is also signed over exactly this body.
 */
export function bodyFor (service: ServiceRecord, payload: string): string {
  if (service.protocol === 'fastify-sso') return payload
  return JSON.stringify({ ...djangoEventBody(service.protocol, JSON.parse(payload) as SsoEvent), token: service.djangoToken })
}

export function updateAccountEvent (service: ServiceRecord, user: UserRecord, groups: readonly string[] = [], changed?: string[]): NewOutboxEvent {
  const body: UpdateAccountEvent = { ...accountFor(service, user, groups), type: 'update_account' }
  if (changed !== undefined) body.changed = changed
  return eventFor(service, user.id, body)
}

export function deauthenticateEvent (service: ServiceRecord, user: UserRecord, ssoSession?: string, reason?: DeauthenticateReason): NewOutboxEvent {
  const body: DeauthenticateEvent = { type: 'deauthenticate', username: user.username, user_id: user.id }
  if (ssoSession !== undefined) body.sso_session = ssoSession
  if (reason !== undefined) body.reason = reason
  // What it ends as of when: a fastify-sso service keeps sessions it was given after this.
  if (service.protocol === 'fastify-sso') body.issued_at = Date.now()
  return eventFor(service, user.id, body)
}

export function renameAccountEvent (service: ServiceRecord, user: UserRecord, oldUsername: string): NewOutboxEvent {
  const body: RenameAccountEvent = { type: 'rename_account', user_id: user.id, username: user.username, old_username: oldUsername }
  return eventFor(service, user.id, body)
}

export function deleteAccountEvent (service: ServiceRecord, user: UserRecord): NewOutboxEvent {
  const body: DeleteAccountEvent = { type: 'delete_account', user_id: user.id, username: user.username }
  return eventFor(service, user.id, body)
}

/** The secrets an event to `service` is signed with at `now`: its own, and the one a rotation replaced while the overlap lasts. */
export function signingSecrets (service: ServiceRecord, now: number): string[] {
  const previous = service.previous
  return previous?.signingSecret != null && previous.until > now ? [service.signingSecret, previous.signingSecret] : [service.signingSecret]
}
