import createError from '@fastify/error'

/**
 * Every error the gateway raises, made with @fastify/error so each has a stable
 * `code` and HTTP `statusCode`. The README lists them with their statuses.
 */
export const errors = {
  /** An option passed to `register` is missing or wrong. */
  INVALID_OPTION: createError('FST_SSO_GATEWAY_INVALID_OPTION', 'Invalid option %s: %s', 500, TypeError),
  /** The service secret is wrong, missing, or belongs to a disabled service. */
  UNAUTHORIZED_SERVICE: createError('FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE', 'Unknown or disabled service token', 401),
  /** The service secret was sent twice with different values (header and body). */
  CONFLICTING_TOKEN: createError('FST_SSO_GATEWAY_CONFLICTING_TOKEN', 'Conflicting service tokens in the X-Token header and the token field', 400),
  /** next_url is not a relative path on the service. */
  INVALID_NEXT_URL: createError('FST_SSO_GATEWAY_INVALID_NEXT_URL', 'next_url must be a relative path on the service, starting with a single "/"', 400),
  /** The authentication request token is unknown, expired, used, or another service's. */
  INVALID_REQUEST_TOKEN: createError('FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN', 'Unknown, expired or already used authentication token', 404),
  /** `/sso/get/` was called before the user signed in. The token stays usable. */
  PENDING: createError('FST_SSO_GATEWAY_PENDING', 'The authentication request is pending: the user has not signed in yet', 409),
  /** `/sso/deauthenticate/` for a user who never signed in through the calling service. */
  UNKNOWN_USER: createError('FST_SSO_GATEWAY_UNKNOWN_USER', 'This service has no signed-in user with that name', 404),
  /** `/sso/touch/`: the SSO session has ended (or never reached the calling service). */
  UNKNOWN_SSO_SESSION: createError('FST_SSO_GATEWAY_UNKNOWN_SSO_SESSION', 'This SSO session has ended', 404),
  /** A user with that username already exists. */
  USER_EXISTS: createError('FST_SSO_GATEWAY_USER_EXISTS', 'A user named %s already exists', 409),
  /** No user with that username or id. */
  USER_NOT_FOUND: createError('FST_SSO_GATEWAY_USER_NOT_FOUND', 'No user %s', 404),
  /** A username that does not canonicalise to 1–150 letters, digits or . _ @ + -. */
  INVALID_USERNAME: createError('FST_SSO_GATEWAY_INVALID_USERNAME', 'Invalid username %s: use 1 to 150 letters, digits or . _ @ + -', 400),
  /** A password that is empty or longer than the limit. */
  INVALID_PASSWORD: createError('FST_SSO_GATEWAY_INVALID_PASSWORD', 'Invalid password: %s', 400),
  /** A service with that name already exists. */
  SERVICE_EXISTS: createError('FST_SSO_GATEWAY_SERVICE_EXISTS', 'A service named %s already exists', 409),
  /** No service with that name. */
  SERVICE_NOT_FOUND: createError('FST_SSO_GATEWAY_SERVICE_NOT_FOUND', 'No service %s', 404),
  /** A service definition with a bad field. */
  INVALID_SERVICE: createError('FST_SSO_GATEWAY_INVALID_SERVICE', 'Invalid service %s: %s', 400),
  /** A group name that is not 1 to 100 characters, or an unknown group. */
  INVALID_GROUP: createError('FST_SSO_GATEWAY_INVALID_GROUP', 'Invalid or unknown group %s', 400),
  /** The database is busy or unavailable; nothing was changed. */
  UNAVAILABLE: createError('FST_SSO_GATEWAY_UNAVAILABLE', 'The sign-in service is temporarily unavailable, please retry', 503)
} as const

/** The `code` of every gateway error, as a string union. */
export type GatewayErrorCode =
  | 'FST_SSO_GATEWAY_INVALID_OPTION'
  | 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE'
  | 'FST_SSO_GATEWAY_CONFLICTING_TOKEN'
  | 'FST_SSO_GATEWAY_INVALID_NEXT_URL'
  | 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN'
  | 'FST_SSO_GATEWAY_PENDING'
  | 'FST_SSO_GATEWAY_UNKNOWN_USER'
  | 'FST_SSO_GATEWAY_UNKNOWN_SSO_SESSION'
  | 'FST_SSO_GATEWAY_USER_EXISTS'
  | 'FST_SSO_GATEWAY_USER_NOT_FOUND'
  | 'FST_SSO_GATEWAY_INVALID_USERNAME'
  | 'FST_SSO_GATEWAY_INVALID_PASSWORD'
  | 'FST_SSO_GATEWAY_SERVICE_EXISTS'
  | 'FST_SSO_GATEWAY_SERVICE_NOT_FOUND'
  | 'FST_SSO_GATEWAY_INVALID_SERVICE'
  | 'FST_SSO_GATEWAY_INVALID_GROUP'
  | 'FST_SSO_GATEWAY_UNAVAILABLE'
