import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import type { FastifyReply } from 'fastify'
import type { ResolvedGatewayOptions } from './options.js'

/** Directory of the built-in eta views (shipped next to dist/). */
export const VIEWS_DIR = fileURLToPath(new URL('../views/', import.meta.url))

/** A compiled eta template, in the shape @fastify/view calls. */
export type CompiledPage = (this: Eta, data: object, options?: object) => string

export interface Pages {
  login: CompiledPage
  message: CompiledPage
  welcome: CompiledPage
  css: string
}

/** Compiles the pages once, at register: the user's templates where given, ours otherwise. */
export function compilePages (eta: Eta, options: ResolvedGatewayOptions): Pages {
  const source = (name: 'login' | 'message' | 'welcome'): string =>
    readFileSync(options.templates[name] ?? `${VIEWS_DIR}${name}.eta`, 'utf8')
  return {
    login: eta.compile(source('login')) as CompiledPage,
    message: eta.compile(source('message')) as CompiledPage,
    welcome: eta.compile(source('welcome')) as CompiledPage,
    css: readFileSync(`${VIEWS_DIR}style.css`, 'utf8')
  }
}

/** A link on a message page. */
export interface PageLink {
  href: string
  label: string
}

/** Data of the message page. */
export interface MessagePage {
  heading: string
  message: string
  links?: PageLink[]
  form?: { action: string, csrfToken: string, label: string }
}

/** Renders the message page with a status. */
export async function sendMessage (reply: FastifyReply, pages: Pages, title: string, status: number, page: MessagePage): Promise<FastifyReply> {
  return await reply.code(status).view(pages.message as never, { title, links: [], form: null, ...page })
}
