import createError from '@fastify/error'

/** Every error code this plugin produces. */
export type SsoServiceErrorCode =
  | 'FST_SSO_SERVICE_INVALID_OPTION'
  | 'FST_SSO_SERVICE_SESSION_CONFLICT'
  | 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE'
  | 'FST_SSO_SERVICE_GATEWAY_REFUSED'
  | 'FST_SSO_SERVICE_NO_LOGIN_IN_PROGRESS'
  | 'FST_SSO_SERVICE_NO_SESSION_COOKIE'
  | 'FST_SSO_SERVICE_ACCOUNT_DISABLED'
  | 'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED'
  | 'FST_SSO_SERVICE_UNAUTHENTICATED'
  | 'FST_SSO_SERVICE_BAD_SIGNATURE'
  | 'FST_SSO_SERVICE_LOGIN_REFUSED'
  | 'FST_SSO_SERVICE_INVALID_EVENT'
  | 'FST_SSO_SERVICE_FRESH_LOGIN_REQUIRED'
  | 'FST_SSO_SERVICE_FRESH_LOGIN_NOT_CONFIRMED'
  | 'FST_SSO_SERVICE_DATABASE_UNAVAILABLE'
  | 'FST_SSO_SERVICE_TOO_MANY_SIGN_INS'
  | 'FST_SSO_SERVICE_LIMITS_UNAVAILABLE'

/** An option is missing or has a value the plugin cannot use. Makes `ready()` reject. */
export const InvalidOptionError = createError<'FST_SSO_SERVICE_INVALID_OPTION', 500, [string, string]>(
  'FST_SSO_SERVICE_INVALID_OPTION', 'fastify-sso-service: invalid option "%s": %s', 500)

/** The app registered @fastify/session or @fastify/csrf-protection itself. */
export const SessionConflictError = createError<'FST_SSO_SERVICE_SESSION_CONFLICT', 500, [string]>(
  'FST_SSO_SERVICE_SESSION_CONFLICT',
  'fastify-sso-service: %s is already registered; fastify-sso-service registers it itself (its session store must index sessions by user) - remove your own registration', 500)

/** The gateway could not be reached, timed out or answered a server error. */
export const GatewayUnavailableError = createError<'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE', 503, [string]>(
  'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE', 'The sign-in service is unavailable: %s', 503)

/** The gateway refused a request (token expired, used, not authenticated, ...). */
export const GatewayRefusedError = createError<'FST_SSO_SERVICE_GATEWAY_REFUSED', 400, [string]>(
  'FST_SSO_SERVICE_GATEWAY_REFUSED', 'The sign-in service refused the request: %s', 400)

/** `/sso/accept/` was reached by a browser session that started no sign-in. */
export const NoLoginInProgressError = createError<'FST_SSO_SERVICE_NO_LOGIN_IN_PROGRESS', 400, []>(
  'FST_SSO_SERVICE_NO_LOGIN_IN_PROGRESS', 'No sign-in is in progress in this browser session', 400)

/** `/sso/accept/` was reached without this app's session cookie: the browser did not keep or send it. */
export const NoSessionCookieError = createError<'FST_SSO_SERVICE_NO_SESSION_COOKIE', 400, []>(
  'FST_SSO_SERVICE_NO_SESSION_COOKIE',
  'Your browser did not send back this site\'s session cookie, so the sign-in cannot be finished. Cookies may be blocked for this site, or the page was opened over plain http while the cookie is only sent over https. Allow cookies (or use the https address) and sign in again.', 400)

/** The gateway vouched for an account that is disabled. */
export const AccountDisabledError = createError<'FST_SSO_SERVICE_ACCOUNT_DISABLED', 403, []>(
  'FST_SSO_SERVICE_ACCOUNT_DISABLED', 'This account is disabled', 403)

/** A pipeline step refused the account (`ctx.refuse(message)`); the message is the step's. */
export const LoginRefusedError = createError<'FST_SSO_SERVICE_LOGIN_REFUSED', 403, [string]>(
  'FST_SSO_SERVICE_LOGIN_REFUSED', '%s', 403)

/** `requireFreshLogin` refused a non-browser client whose sign-in is too old. */
export const FreshLoginRequiredError = createError<'FST_SSO_SERVICE_FRESH_LOGIN_REQUIRED', 401, []>(
  'FST_SSO_SERVICE_FRESH_LOGIN_REQUIRED', 'A recent sign-in is required', 401)

/** A forced sign-in (`prompt=login`) came back without a fresh password entry (`auth_time`). */
export const FreshLoginNotConfirmedError = createError<'FST_SSO_SERVICE_FRESH_LOGIN_NOT_CONFIRMED', 400, []>(
  'FST_SSO_SERVICE_FRESH_LOGIN_NOT_CONFIRMED', 'The sign-in service did not confirm that the password was entered again', 400)

/** The application's `onAccount` hook (or another pipeline step) threw. */
export const AccountHookFailedError = createError<'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED', 500, []>(
  'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED', 'The application could not set up the account', 500)

/** `requireLogin` refused an anonymous non-browser client. */
export const UnauthenticatedError = createError<'FST_SSO_SERVICE_UNAUTHENTICATED', 401, []>(
  'FST_SSO_SERVICE_UNAUTHENTICATED', 'Authentication required', 401)

/** An event with a missing, wrong or stale signature (or a wrong token in the unsigned form). */
export const BadSignatureError = createError<'FST_SSO_SERVICE_BAD_SIGNATURE', 401, [string]>(
  'FST_SSO_SERVICE_BAD_SIGNATURE', 'Event refused: %s', 401)

/** An event that passed the schema but lacks what its type needs (e.g. `rename_account` without `old_username`). */
export const InvalidEventError = createError<'FST_SSO_SERVICE_INVALID_EVENT', 400, [string]>(
  'FST_SSO_SERVICE_INVALID_EVENT', 'Event refused: %s', 400)

/** The service's own database (sessions) is full, read-only or otherwise failing: nothing was saved. */
export const DatabaseUnavailableError = createError<'FST_SSO_SERVICE_DATABASE_UNAVAILABLE', 503, []>(
  'FST_SSO_SERVICE_DATABASE_UNAVAILABLE', 'This app cannot keep your session right now (its database is unavailable). Please try again in a few minutes.', 503)

/** One client asked `/login/` too often (`loginRateLimit`). */
export const TooManySignInsError = createError<'FST_SSO_SERVICE_TOO_MANY_SIGN_INS', 429, []>(
  'FST_SSO_SERVICE_TOO_MANY_SIGN_INS', 'Too many sign-in attempts from your address. Wait a minute and try again.', 429)

/** The `limits` store (Redis) did not answer: no sign-in is started while nothing counts them (fail closed). */
export const LimitsUnavailableError = createError<'FST_SSO_SERVICE_LIMITS_UNAVAILABLE', 503, []>(
  'FST_SSO_SERVICE_LIMITS_UNAVAILABLE', 'Sign-in is unavailable right now (this app cannot check its sign-in limits). Please try again in a minute.', 503)

/** Whether an error comes from SQLite (full, read-only, locked, I/O ...). */
export function isDatabaseError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_')
}
