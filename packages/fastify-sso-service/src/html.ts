import { PATHS } from 'fastify-sso-protocol'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DatabaseUnavailableError, isDatabaseError } from './errors.js'

/** Headers of every HTML page this plugin sends. */
export const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin'
} as const

/**
 * Headers of every response of the plugin's browser routes, redirects included (not the
 * content type): pages of this plugin cannot be framed, sniffed, or leak their URL.
 */
export const SECURITY_HEADERS = {
  'content-security-policy': HTML_HEADERS['content-security-policy'],
  'referrer-policy': HTML_HEADERS['referrer-policy'],
  'x-content-type-options': HTML_HEADERS['x-content-type-options'],
  'x-frame-options': HTML_HEADERS['x-frame-options'],
  'cross-origin-opener-policy': HTML_HEADERS['cross-origin-opener-policy'],
  'cross-origin-resource-policy': HTML_HEADERS['cross-origin-resource-policy']
} as const

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

/** A small HTML page; `bodyHtml` must already be escaped. */
export function pageHtml (title: string, bodyHtml: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${bodyHtml}
</body>
</html>
`
}

/** Sends a small HTML page; `bodyHtml` must already be escaped. */
export function sendPage (reply: FastifyReply, status: number, title: string, bodyHtml: string): FastifyReply {
  return reply.code(status).headers(HTML_HEADERS).send(pageHtml(title, bodyHtml))
}

/** `/login/?next=...` (and `prompt`, if given) for a (checked) next path. */
export function loginHref (next: string, prompt?: 'none' | 'login'): string {
  const query: string[] = []
  if (prompt !== undefined) query.push(`prompt=${prompt}`)
  if (next !== '/') query.push(`next=${encodeURIComponent(next)}`)
  return query.length === 0 ? `${PATHS.login}/` : `${PATHS.login}/?${query.join('&')}`
}

/** A SQLite failure is shown as what it is to a user: this app's database is unavailable (503). */
function shown (err: FastifyError): FastifyError {
  return isDatabaseError(err) ? new DatabaseUnavailableError() : err
}

function statusOf (err: FastifyError): number {
  const status = err.statusCode
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500
}

/** What an error page says: the error's own message for 4xx and our 503, a generic one otherwise. */
export function publicMessage (err: FastifyError, status: number): string {
  if (status < 500 || err.code === 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE' || err.code === 'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED' ||
    err.code === 'FST_SSO_SERVICE_DATABASE_UNAVAILABLE' || err.code === 'FST_SSO_SERVICE_LIMITS_UNAVAILABLE') return err.message
  return 'Something went wrong on our side.'
}

/** Sends an error page with a link to try again. */
export function sendErrorPage (reply: FastifyReply, error: FastifyError, retryHref: string, retryLabel = 'Try again'): FastifyReply {
  const err = shown(error)
  const status = statusOf(err)
  return sendPage(reply, status, status === 503 ? 'Sign-in unavailable' : 'Sign-in failed',
    `<p>${escapeHtml(publicMessage(err, status))}</p>\n<p><a href="${escapeHtml(retryHref)}">${escapeHtml(retryLabel)}</a></p>`)
}

/** The page of a sign-in a pipeline step refused: its message, a way back and a way to sign out at the gateway. */
export function sendRefusalPage (reply: FastifyReply, message: string, gatewayUrl: string): FastifyReply {
  return sendPage(reply, 403, 'Sign-in refused', `<p id="refusal">${escapeHtml(message)}</p>
<p><a href="/">Back to the home page</a></p>
<p><a href="${escapeHtml(`${gatewayUrl}${PATHS.logout}/`)}">Sign out at the sign-in service</a> (to sign in as someone else)</p>`)
}

/** Error handler of the browser routes: a page, never a stack trace. */
export function htmlErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = statusOf(err)
  if (status >= 500) request.log.error({ err }, 'fastify-sso-service: request failed')
  if (status === 503) reply.header('retry-after', 60)
  else if (err.code?.startsWith('FST_CSRF_') === true) request.log.warn({ audit: 'csrf_rejected', url: request.routeOptions.url }, 'CSRF check failed')
  return sendPage(reply, status, status >= 500 ? 'Error' : 'Request refused',
    `<p>${escapeHtml(publicMessage(err, status))}</p>\n<p><a href="/">Home</a></p>`)
}
