import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import type { FastifyReply } from 'fastify'
import type { ResolvedGatewayOptions } from './options.js'

/** Directory of the built-in eta views (shipped next to dist/). */
export const VIEWS_DIR = fileURLToPath(new URL('../views/', import.meta.url))

/** A compiled eta template, in the shape @fastify/view calls. */
export type CompiledPage = (this: Eta, data: object, options?: object) => string

/** The pages a user may replace with their own eta template. */
export const PAGE_NAMES = ['login', 'message', 'welcome', 'sessions'] as const
export type PageName = typeof PAGE_NAMES[number]

export type Pages = Record<PageName, CompiledPage> & { css: string }

/** Compiles the pages once, at register: the user's templates where given, ours otherwise. */
export function compilePages (eta: Eta, options: ResolvedGatewayOptions): Pages {
  const compile = (name: PageName): CompiledPage =>
    eta.compile(readFileSync(options.templates[name] ?? `${VIEWS_DIR}${name}.eta`, 'utf8')) as CompiledPage
  return {
    login: compile('login'),
    message: compile('message'),
    welcome: compile('welcome'),
    sessions: compile('sessions'),
    css: readFileSync(`${VIEWS_DIR}style.css`, 'utf8')
  }
}

/** A link on a message page. */
export interface PageLink {
  href: string
  label: string
}

/** Data of the message page. */
/** A POST form on a message page, with its CSRF token and hidden fields. */
export interface PageForm {
  action: string
  csrfToken: string
  label: string
  fields?: Record<string, string>
  /** The button's id. */
  id?: string
}

export interface MessagePage {
  heading: string
  message: string
  links?: PageLink[]
  /** One form (kept for custom templates written against it). */
  form?: PageForm
  forms?: PageForm[]
}

/** Renders the message page with a status. */
export async function sendMessage (reply: FastifyReply, pages: Pages, title: string, status: number, page: MessagePage): Promise<FastifyReply> {
  const forms = page.forms ?? (page.form === undefined ? [] : [page.form])
  return await reply.code(status).view(pages.message as never, { title, links: [], form: forms[0] ?? null, ...page, forms })
}
