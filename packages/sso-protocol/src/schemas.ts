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

/** Body of `POST /sso/event/` (after its signature is verified). */
export const eventBodySchema = {
  type: 'object',
  required: ['type', 'username'],
  properties: {
    type: { type: 'string', enum: ['update_account', 'deauthenticate', 'rename_account', 'delete_account'] },
    token,
    sso_session: token,
    user_id: token,
    old_username: { type: 'string', minLength: 1, maxLength: MAX_USERNAME_LENGTH },
    reason: { type: 'string', maxLength: 64 },
    changed: { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 100 } },
    issued_at: { type: 'integer', minimum: 0 },
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
    issued_at: { type: 'integer' },
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
