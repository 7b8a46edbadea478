import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { PageKit, type Translate } from 'fastify-sso-protocol/pages'
import type { ResolvedGatewayOptions } from './options.js'
import type { ServiceRecord } from './store/store.js'

/** Directory of the built-in eta pages (shipped next to dist/); the layout and partials come from the kit. */
export const VIEWS_DIR = fileURLToPath(new URL('../views/', import.meta.url))

/** Where the gateway serves the kit's stylesheet (with `theme.css` appended). */
export const STYLESHEET = '/sso/style.css'

/** The pages a user may replace with their own eta template. */
export const PAGE_NAMES = ['login', 'message', 'welcome', 'sessions'] as const
export type PageName = typeof PAGE_NAMES[number]

export type Pages = PageKit<PageName>

/**
 * Compiles the pages once, at register: the user's templates where given, ours otherwise. The
 * stylesheet is the kit's, then the admin console's rules (`admin.css`), then `theme.css`.
 */
export function compilePages (options: ResolvedGatewayOptions): Pages {
  const theme = { ...options.pages.theme, css: `${readFileSync(`${VIEWS_DIR}admin.css`, 'utf8')}\n${options.pages.theme.css}` }
  return new PageKit({ ...options.pages, theme }, VIEWS_DIR, PAGE_NAMES, STYLESHEET)
}

/** The locale of a request's pages. */
export function localeOf (pages: Pages, request: FastifyRequest): string {
  return pages.localeOf(request.headers['accept-language'])
}

/** The translate function for a request. */
export function translate (pages: Pages, request: FastifyRequest): Translate {
  return pages.translator(localeOf(pages, request))
}

/** How pages show a service: its display name (or name) and logo. */
export interface ServiceView {
  name: string
  displayName: string
  logoUrl: string | null
}

export const serviceView = (s: Pick<ServiceRecord, 'name' | 'displayName' | 'logoUrl'>): ServiceView =>
  ({ name: s.name, displayName: s.displayName ?? s.name, logoUrl: s.logoUrl })

/**
 * Lets the page load a service's logo from its own origin: the CSP's `img-src` gains that
 * origin on this response only (a logo on the gateway itself is already allowed).
 */
function allowImage (reply: FastifyReply, url: string | null | undefined): void {
  if (url === null || url === undefined || url.startsWith('/')) return
  // Always a string here: every page route is registered after @fastify/helmet, which sets it.
  const csp = reply.getHeader('content-security-policy') as string
  reply.header('content-security-policy', csp.replace(/img-src ([^;]*)/, `img-src $1 ${new URL(url).origin}`))
}

/** Renders a page through @fastify/view, in the request's locale. */
export async function sendPage (reply: FastifyReply, pages: Pages, name: PageName, status: number, data: { heading: string, service?: ServiceView | null, [key: string]: unknown }): Promise<FastifyReply> {
  const locale = localeOf(pages, reply.request)
  allowImage(reply, data.service?.logoUrl)
  return await reply.code(status).header('content-language', locale).header('vary', 'accept-language')
    .view(pages.page(name) as never, { ...pages.frame(locale), ...data })
}

/** A link on a message page (`button`: shown as a button of that kind). */
export interface PageLink {
  href: string
  label: string
  id?: string
  button?: 'primary' | 'secondary'
}

/** A POST form on a message page, with its CSRF token and hidden fields. */
export interface PageForm {
  action: string
  csrfToken: string
  label: string
  fields?: Record<string, string>
  /** The button's id. */
  id?: string
  /** `danger` for what cannot be undone, `secondary` for the quieter choice. @default 'primary' */
  variant?: 'primary' | 'secondary' | 'danger'
  /** A line under the button saying what it does. */
  help?: string
}

/** Data of the message page. */
export interface MessagePage {
  heading: string
  message: string
  /** The service the page is about, shown with its name and logo. */
  service?: ServiceView | null
  links?: PageLink[]
  /** One form (kept for custom templates written against it). */
  form?: PageForm
  forms?: PageForm[]
}

/** Renders the message page with a status. */
export async function sendMessage (reply: FastifyReply, pages: Pages, title: string, status: number, page: MessagePage): Promise<FastifyReply> {
  const forms = page.forms ?? (page.form === undefined ? [] : [page.form])
  return await sendPage(reply, pages, 'message', status, { title, links: [], service: null, form: forms[0] ?? null, ...page, forms })
}
