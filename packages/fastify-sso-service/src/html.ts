import { fileURLToPath } from 'node:url'
import { PATHS } from 'fastify-sso-protocol'
import { ENGLISH_MESSAGES, PageKit, type MessageKey, type Translate } from 'fastify-sso-protocol/pages'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { DatabaseUnavailableError, isDatabaseError } from './errors.js'
import { SERVICE_PAGE_NAMES } from './options.js'
import type { ResolvedOptions, ServicePageName } from './types.js'

/** Directory of the built-in eta pages (shipped next to dist/); the layout and partials come from the kit. */
export const VIEWS_DIR = fileURLToPath(new URL('../views/', import.meta.url))

/** Where the plugin serves the kit's stylesheet (with `theme.css` appended). */
export const STYLESHEET = `${PATHS.accept.replace(/\/accept$/, '')}/style.css`

export type Pages = PageKit<ServicePageName>

/** The page kit with this app's templates, messages and theme; compiled once, at register. */
export function compilePages (options: ResolvedOptions): Pages {
  return new PageKit(options.pages, VIEWS_DIR, SERVICE_PAGE_NAMES, STYLESHEET)
}

/** The Content-Security-Policy of every page: nothing but this site's stylesheet, images and forms. */
export function contentSecurityPolicy (options: ResolvedOptions): string {
  const logo = options.pages.theme.logoUrl
  const img = logo === null || logo.startsWith('/') ? "'self'" : `'self' ${new URL(logo).origin}`
  return `default-src 'none'; style-src 'self'; img-src ${img}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`
}

/**
 * Headers of every response of the plugin's browser routes, redirects included (not the
 * content type): pages of this plugin cannot be framed, sniffed, or leak their URL.
 */
export function securityHeaders (options: ResolvedOptions): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy(options),
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin'
  }
}


/** The locale of a request's pages. */
export function localeOf (pages: Pages, request: FastifyRequest): string {
  return pages.localeOf(request.headers['accept-language'])
}

/** The translate function for a request. */
export function translate (pages: Pages, request: FastifyRequest): Translate {
  return pages.translator(localeOf(pages, request))
}

/** A link on a page (`button`: shown as a button of that kind). */
export interface PageLink {
  href: string
  label: string
  id?: string
  button?: 'primary' | 'secondary'
}

/** What the message page shows. */
export interface MessagePage {
  heading: string
  /** Paragraphs, each with an optional id. */
  paragraphs: Array<{ text: string, id?: string }>
  links: PageLink[]
}

/**
 * Renders a page in the request's locale. Through @fastify/view where the route has it; `render`
 * (the kit directly) where it does not (an onSend hook).
 */
export async function sendPage (reply: FastifyReply, pages: Pages, name: ServicePageName, status: number, data: { heading: string, [key: string]: unknown }): Promise<FastifyReply> {
  const locale = localeOf(pages, reply.request)
  return await reply.code(status).header('content-language', locale).header('vary', 'accept-language')
    .header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store')
    .view(pages.page(name) as never, { ...pages.frame(locale), ...data })
}

/** Sends the message page. */
export async function sendMessage (reply: FastifyReply, pages: Pages, status: number, page: MessagePage): Promise<FastifyReply> {
  return await sendPage(reply, pages, 'message', status, { ...page })
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

/** The messages table's text for an error code, if it has one. */
function codeKey (code: string | undefined): MessageKey | null {
  const key = `service.error.${String(code)}`
  return key in ENGLISH_MESSAGES ? key as MessageKey : null
}

/** Errors whose message carries what the gateway said (a status, its error text). */
const WITH_DETAILS: ReadonlySet<string> = new Set(['FST_SSO_SERVICE_GATEWAY_REFUSED', 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE'])

/** The gateway's own words, under the table's text, for whoever has to fix it. */
function details (err: FastifyError, t: Translate): Array<{ text: string, id: string }> {
  return WITH_DETAILS.has(String(err.code)) ? [{ text: t('service.error.details', { detail: err.message }), id: 'error-detail' }] : []
}

/**
 * What an error page says: the table's text for a known error; the error's own message for
 * other 4xx (a validation message, an app's refusal); a generic text otherwise.
 */
export function publicMessage (err: FastifyError, status: number, t: Translate): string {
  const key = codeKey(err.code)
  if (key !== null) return t(key)
  if (status < 500) return err.message
  return t('service.error.internal')
}

/** Sends an error page of a sign-in, with a link to try again. */
export async function sendErrorPage (reply: FastifyReply, pages: Pages, error: FastifyError, retryHref: string, retryLabel?: MessageKey): Promise<FastifyReply> {
  const err = shown(error)
  const status = statusOf(err)
  const t = translate(pages, reply.request)
  return await sendMessage(reply, pages, status, {
    heading: t(status === 503 ? 'service.signIn.unavailable' : 'service.signIn.failed'),
    paragraphs: [{ text: publicMessage(err, status, t), id: 'error' }, ...details(err, t)],
    links: [{ href: retryHref, label: t(retryLabel ?? 'common.tryAgain'), button: 'primary', id: 'retry' }, { href: '/', label: t('common.home') }]
  })
}

/** The page of a sign-in a pipeline step refused: its message, a way back and a way to sign out at the gateway. */
export async function sendRefusalPage (reply: FastifyReply, pages: Pages, message: string, gatewayUrl: string): Promise<FastifyReply> {
  const t = translate(pages, reply.request)
  return await sendMessage(reply, pages, 403, {
    heading: t('service.signIn.refused'),
    paragraphs: [{ text: message, id: 'refusal' }, { text: t('service.signIn.switchAccount') }],
    links: [{ href: '/', label: t('common.home'), button: 'primary' }, { href: `${gatewayUrl}${PATHS.logout}/`, label: t('service.signOutAtGateway') }]
  })
}

/** Error handler of the browser routes: a page, never a stack trace. */
export function htmlErrorHandler (pages: Pages) {
  return async function ssoServiceErrorPage (err: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const status = statusOf(err)
    if (status >= 500) request.log.error({ err }, 'fastify-sso-service: request failed')
    if (status === 503) reply.header('retry-after', 60)
    else if (err.code?.startsWith('FST_CSRF_') === true) request.log.warn({ audit: 'csrf_rejected', url: request.routeOptions.url }, 'CSRF check failed')
    const t = translate(pages, request)
    return await sendMessage(reply, pages, status, {
      heading: t(status >= 500 ? 'service.error.internalHeading' : 'service.error.heading'),
      paragraphs: [{ text: publicMessage(err, status, t), id: 'error' }],
      links: [{ href: '/', label: t('common.home'), button: 'primary' }]
    })
  }
}

/** The "database unavailable" page, rendered without @fastify/view (from an onSend hook). */
export function databaseUnavailablePage (pages: Pages, request: FastifyRequest): { html: string, locale: string } {
  const locale = localeOf(pages, request)
  const t = pages.translator(locale)
  const html = pages.render('message', locale, {
    heading: t('service.error.databaseHeading'),
    paragraphs: [{ text: t('service.error.FST_SSO_SERVICE_DATABASE_UNAVAILABLE'), id: 'database-unavailable' }],
    links: [{ href: '/', label: t('common.home'), button: 'primary' }]
  })
  return { html, locale }
}
