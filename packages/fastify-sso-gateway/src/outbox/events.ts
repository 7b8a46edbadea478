import { generateToken, type DeauthenticateEvent, type SsoAccount, type UpdateAccountEvent } from 'fastify-sso-protocol'
import type { NewOutboxEvent, ServiceRecord, UserRecord } from '../store/store.js'

/** The account as services see it: django-sso's fields, then the extra attributes. */
export function accountOf (user: UserRecord): SsoAccount {
  return {
    ...user.attributes,
    username: user.username,
    is_active: user.isActive,
    is_staff: user.isStaff,
    is_superuser: user.isSuperuser,
    email: user.email,
    display_name: user.displayName
  }
}

/**
 * An outbox entry for one service. django-sso services get their secret in the body
 * (that is how they authenticate events); every event is also signed when sent.
 */
export function eventFor (service: ServiceRecord, userKey: string, body: UpdateAccountEvent | DeauthenticateEvent): NewOutboxEvent {
  const payload = service.protocol === 'django-sso' && service.djangoToken !== null
    ? { ...body, token: service.djangoToken }
    : body
  return { id: 'evt_' + generateToken(18), serviceId: service.id, userKey, payload: JSON.stringify(payload) }
}

export function updateAccountEvent (service: ServiceRecord, user: UserRecord): NewOutboxEvent {
  return eventFor(service, user.id, { ...accountOf(user), type: 'update_account' })
}

export function deauthenticateEvent (service: ServiceRecord, user: UserRecord, ssoSession?: string): NewOutboxEvent {
  const body: DeauthenticateEvent = { type: 'deauthenticate', username: user.username }
  if (ssoSession !== undefined) body.sso_session = ssoSession
  return eventFor(service, user.id, body)
}
