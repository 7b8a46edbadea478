import { MAX_NEXT_URL_LENGTH } from './next-url.js'

/** Protocol paths, without the trailing slash (both forms are served). */
export const PATHS = {
  obtain: '/sso/obtain',
  get: '/sso/get',
  makeUsed: '/sso/make_used',
  deauthenticate: '/sso/deauthenticate',
  login: '/login',
  logout: '/logout',
  welcome: '/welcome',
  accept: '/sso/accept',
  event: '/sso/event',
  test: '/sso/test',
  accounts: '/sso/accounts',
  touch: '/sso/touch',
  signedOut: '/sso/signed-out'
} as const

/** Longest service secret or request token accepted on the wire. */
export const MAX_TOKEN_LENGTH = 256
/** Longest username accepted on the wire. */
export const MAX_USERNAME_LENGTH = 150

const token = { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } as const

/** Body of `POST /sso/obtain/`. `token` may come in `X-Token` instead. */
export const obtainBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['next_url'],
  properties: {
    token,
    next_url: { type: 'string', minLength: 1, maxLength: MAX_NEXT_URL_LENGTH },
    prompt: { type: 'string', enum: ['none', 'login'] }
  }
} as const

/** Body of `POST /sso/get/` and `POST /sso/make_used/`. */
export const authenticationTokenBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['authentication_token'],
  properties: {
    token,
    authentication_token: token,
    /** The one-time code the gateway put in the browser's redirect to `/sso/accept/`. */
    code: token
  }
} as const

/** Body of `POST /sso/accounts/` (resync): `cursor` from the previous page. */
export const accountsBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    token,
    cursor: token,
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' }
  }
} as const

/** Body of `POST /sso/touch/`: a service says an SSO session is in use there. */
export const touchBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['sso_session'],
  properties: {
    token,
    sso_session: token
  }
} as const

/** Body of `POST /sso/deauthenticate/`. */
export const deauthenticateBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['user_identy'],
  properties: {
    token,
    user_identy: { type: 'string', minLength: 1, maxLength: MAX_USERNAME_LENGTH },
    sso_session: token
  }
} as const

const account = {
  username: { type: 'string', minLength: 1, maxLength: MAX_USERNAME_LENGTH },
  is_active: { type: 'boolean' },
  is_staff: { type: 'boolean' },
  is_superuser: { type: 'boolean' },
  email: { type: ['string', 'null'], maxLength: 320 },
  display_name: { type: ['string', 'null'], maxLength: 200 }
} as const

const username = { type: 'string', minLength: 1, maxLength: MAX_USERNAME_LENGTH } as const

/** A JSON schema that requires these keys (their shapes are checked under `properties`). */
function has (...keys: string[]): { required: string[], properties: Record<string, true> } {
  return { required: keys, properties: Object.fromEntries(keys.map((k) => [k, true])) }
}

/** A JSON schema `if` that holds for events of these types. */
function typeIs (...types: string[]): { properties: { type: { enum: string[] } } } {
  return { properties: { type: { enum: types } } }
}

/**
 * Body of `POST /sso/event/` (after its signature is verified), in any dialect: fastify-sso,
 * django-sso 1.x (the same keys) and django-sso 2.x/3.x (`fields`, `user_identy`,
 * `user_identities`, `old`, `new`, and the types `update_fields`, `delete_user`,
 * `change_user_identy`). `normalizeEvent` reads it into the canonical shape.
 */
export const eventBodySchema = {
  type: 'object',
  required: ['type'],
  // What each type needs, in whichever dialect it comes.
  allOf: [
    { if: typeIs('update_account'), then: { anyOf: [has('username'), has('fields')] } },
    { if: typeIs('deauthenticate', 'delete_account', 'delete_user'), then: { anyOf: [has('username'), has('user_identy')] } },
    { if: typeIs('rename_account'), then: has('username', 'old_username') },
    { if: typeIs('change_user_identy'), then: has('old', 'new') },
    { if: typeIs('update_fields'), then: has('fields', 'user_identities') }
  ],
  properties: {
    type: {
      type: 'string',
      enum: ['update_account', 'deauthenticate', 'rename_account', 'delete_account', 'update_fields', 'delete_user', 'change_user_identy']
    },
    user_identy: username,
    user_identities: { type: 'array', minItems: 1, maxItems: 1000, items: username },
    fields: { type: 'object', maxProperties: 100 },
    old: username,
    new: username,
    token,
    sso_session: token,
    user_id: token,
    old_username: { type: 'string', minLength: 1, maxLength: MAX_USERNAME_LENGTH },
    reason: { type: 'string', maxLength: 64 },
    changed: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 100 } },
    ...account
  }
} as const

/** `POST /sso/get/` success response, for response serialisation. */
export const getResponseSchema = {
  type: 'object',
  required: ['authenticated', 'user_identy', 'next_url'],
  properties: {
    authenticated: { type: 'boolean' },
    user_identy: { type: 'string' },
    next_url: { type: 'string' },
    sso_session: { type: 'string' },
    sso_session_ends_at: { type: 'integer' },
    auth_time: { type: 'integer' },
    user: { type: 'object', additionalProperties: true, properties: account }
  }
} as const

/** `{"error": "..."}` response, for response serialisation. */
export const errorResponseSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'string' },
    code: { type: 'string' }
  }
} as const
