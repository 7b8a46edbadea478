import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import { EN, type MessageKey } from './messages-en.js'
import { RU } from './messages-ru.js'

/** Directory of the kit's views: `layout.eta`, the partials and `style.css` (shipped in the package). */
export const KIT_VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url))

/** A messages table: key → text, `{name}` marking a parameter. */
export type MessageTable = Record<MessageKey, string>

/** The locales the kit ships, each complete. */
export const BUILT_IN_MESSAGES: Readonly<Record<string, Readonly<MessageTable>>> = Object.freeze({ en: Object.freeze({ ...EN }), ru: Object.freeze({ ...RU }) })

/** Looks a key up and fills in its parameters. */
export type Translate = (key: MessageKey, params?: Record<string, string | number>) => string

/** The page options both plugins take (`templates`, `locale`, `messages`, `theme`). */
export interface PageOptions<Page extends string = string> {
  /**
   * Your own eta templates (file paths) replacing built-in pages, by page name. A template may
   * use the kit's layout and partials: `<% layout('@layout') %>`, `include('@button-form', ...)`.
   * @default {}
   */
  templates?: Partial<Record<Page, string>>
  /**
   * Show every page in this locale instead of choosing from the browser's `Accept-Language`.
   * @default null (chosen per request; English when nothing matches)
   */
  locale?: string | null
  /**
   * Messages to add or override, by locale: `{ de: { 'login.heading': 'Anmelden', ... } }`. A new
   * locale becomes available; a key it lacks falls back to English. @default {}
   */
  messages?: Record<string, Partial<Record<MessageKey, string>>>
  /** Branding of the pages. @default {} */
  theme?: PageTheme
}

/** Branding: a name and logo in the page header, and CSS appended to the kit's stylesheet. */
export interface PageTheme {
  /** The name in the header and the window title. */
  name?: string
  /** A logo shown beside the name: an absolute http(s) URL or a path starting with `/`. @default null */
  logoUrl?: string | null
  /**
   * CSS appended to the kit's stylesheet (served from the plugin's own URL, so the strict CSP
   * allows it): set the custom properties there, e.g. `:root { --sso-accent: #0b6e4f }`. @default ''
   */
  css?: string
}

/** Page options checked and filled in. */
export interface ResolvedPageOptions {
  readonly templates: Readonly<Record<string, string>>
  readonly locale: string | null
  readonly messages: Readonly<Record<string, Readonly<Record<string, string>>>>
  readonly theme: Readonly<{ name: string | null, logoUrl: string | null, css: string }>
}

/** An option error: the option's name, what is wrong, and the value given. */
export type OptionFailure = (option: string, problem: string, value: unknown) => never

const LOCALE_TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/

/** Whether a logo URL is an absolute http(s) URL or a path on the same site (never `//host`). */
export function isLogoUrl (value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048 || /[\s<>"'\\]/.test(value)) return false
  if (value.startsWith('/')) return !value.startsWith('//')
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === ''
  } catch {
    return false
  }
}

/** Checks the page options once, at register (`fail` throws the plugin's own option error). */
export function resolvePageOptions (o: PageOptions, pageNames: readonly string[], fail: OptionFailure): ResolvedPageOptions {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  const templatesIn: unknown = o.templates ?? {}
  if (!isObject(templatesIn)) fail('templates', 'must be an object of file paths', templatesIn)
  const templates: Record<string, string> = {}
  for (const [key, file] of Object.entries(templatesIn)) {
    if (!pageNames.includes(key)) fail(`templates.${key}`, `is not a page (pages: ${pageNames.join(', ')})`, file)
    if (typeof file !== 'string' || !existsSync(file)) fail(`templates.${key}`, 'must be the path of an existing eta file', file)
    templates[key] = file
  }
  const messagesIn: unknown = o.messages ?? {}
  if (!isObject(messagesIn)) fail('messages', 'must be an object of message tables by locale', messagesIn)
  const messages: Record<string, Record<string, string>> = {}
  for (const [locale, table] of Object.entries(messagesIn)) {
    if (!LOCALE_TAG.test(locale)) fail(`messages.${locale}`, 'must be keyed by a lower-case language tag such as "de" or "pt-BR"', table)
    if (!isObject(table)) fail(`messages.${locale}`, 'must be an object of texts by message key', table)
    for (const [key, text] of Object.entries(table)) {
      if (!(key in EN)) fail(`messages.${locale}.${key}`, 'is not a message key (see the English table in the README)', text)
      if (typeof text !== 'string' || text.length > 2000) fail(`messages.${locale}.${key}`, 'must be a string of at most 2000 characters', text)
    }
    messages[locale] = { ...(BUILT_IN_MESSAGES[locale] ?? {}), ...(table as Record<string, string>) }
  }
  const available = new Set([...Object.keys(BUILT_IN_MESSAGES), ...Object.keys(messages)])
  const locale = o.locale ?? null
  if (locale !== null && (typeof locale !== 'string' || !available.has(locale))) {
    fail('locale', `must be one of the available locales (${[...available].join(', ')}) or null`, locale)
  }
  const themeIn: unknown = o.theme ?? {}
  if (!isObject(themeIn)) fail('theme', 'must be an object { name?, logoUrl?, css? }', themeIn)
  const name = themeIn.name ?? null
  if (name !== null && (typeof name !== 'string' || name.trim().length === 0 || name.length > 100)) fail('theme.name', 'must be a string of 1 to 100 characters', name)
  const logoUrl = themeIn.logoUrl ?? null
  if (logoUrl !== null && !isLogoUrl(logoUrl)) fail('theme.logoUrl', 'must be an absolute http(s) URL or a path starting with /', logoUrl)
  const css = themeIn.css ?? ''
  if (typeof css !== 'string' || css.length > 65_536) fail('theme.css', 'must be a string of CSS of at most 64 KiB', css)
  return Object.freeze({
    templates: Object.freeze(templates),
    locale,
    messages: Object.freeze(messages),
    theme: Object.freeze({ name: name === null ? null : name.trim(), logoUrl, css })
  })
}

/**
 * The locale to show from an `Accept-Language` header: the available locale the browser ranks
 * highest (an exact tag first, then its language: `ru-RU` picks `ru`), else `fallback`.
 */
export function chooseLocale (acceptLanguage: string | undefined, available: readonly string[], fallback = 'en'): string {
  if (acceptLanguage === undefined || acceptLanguage.length > 1000) return fallback
  const ranked = acceptLanguage.split(',').map((part, i) => {
    const [tag = '', ...params] = part.trim().split(';')
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined)
    return { tag: tag.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), i }
  }).filter((r) => r.tag.length > 0 && r.q > 0).sort((a, b) => b.q - a.q || a.i - b.i)
  const lower = new Map(available.map((l) => [l.toLowerCase(), l]))
  for (const { tag } of ranked) {
    const exact = lower.get(tag) ?? lower.get(tag.split('-')[0] as string)
    if (exact !== undefined) return exact
  }
  return fallback
}

/** A compiled page, as @fastify/view's eta engine calls it (`this` is the kit's Eta). */
export type CompiledPage = (this: Eta, data: object, options?: object) => string

const PARTIALS = ['layout', 'button-form', 'actions', 'service', 'alert'] as const

/** What the layout and partials read, besides the page's own data. */
export interface PageFrame {
  t: Translate
  locale: string
  brand: { name: string | null, logoUrl: string | null }
  stylesheet: string
}

/**
 * The page kit both plugins render with: one Eta instance holding the layout and partials
 * (`@layout`, `@button-form`, `@actions`, `@service`, `@alert`), the plugin's pages (its own or
 * the user's templates), the stylesheet, and the messages by locale.
 */
export class PageKit<Page extends string = string> {
  /** The Eta instance (give it to @fastify/view: `engine: { eta: kit.eta }`). */
  readonly eta: Eta
  /** The stylesheet: the kit's, then `theme.css`. */
  readonly css: string
  /** Every locale pages can be shown in. */
  readonly locales: readonly string[]
  readonly #pages = new Map<string, CompiledPage>()
  readonly #tables: Record<string, Record<string, string>>
  readonly #options: ResolvedPageOptions
  readonly #stylesheet: string

  /**
   * @param viewsDir the plugin's own page templates (`<page-in-kebab-case>.eta`)
   * @param pageNames the pages, each compiled once here
   * @param stylesheet the URL the plugin serves `css` at
   */
  constructor (options: ResolvedPageOptions, viewsDir: string, pageNames: readonly Page[], stylesheet: string) {
    this.#options = options
    this.#stylesheet = stylesheet
    this.eta = new Eta({ autoEscape: true, cache: true, useWith: false })
    for (const name of PARTIALS) this.eta.loadTemplate(`@${name}`, readFileSync(`${KIT_VIEWS_DIR}${name}.eta`, 'utf8'))
    for (const name of pageNames) {
      // Built-in page files are kebab-case: page `signedOut` is `signed-out.eta`.
      const file = options.templates[name] ?? `${viewsDir}${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}.eta`
      this.#pages.set(name, this.eta.compile(readFileSync(file, 'utf8')) as CompiledPage)
    }
    this.#tables = { ...BUILT_IN_MESSAGES, ...options.messages }
    this.locales = Object.freeze(Object.keys(this.#tables))
    this.css = `${readFileSync(`${KIT_VIEWS_DIR}style.css`, 'utf8')}\n${options.theme.css}\n`
  }

  /** A compiled page, for `reply.view(kit.page(name), data)`. */
  page (name: Page): CompiledPage {
    return this.#pages.get(name) as CompiledPage
  }

  /** The locale of a request: the forced one, or the best match of its `Accept-Language`. */
  localeOf (acceptLanguage: string | undefined): string {
    return this.#options.locale ?? chooseLocale(acceptLanguage, this.locales)
  }

  /** The translate function of a locale (English for a key it lacks). */
  translator (locale: string): Translate {
    const table = this.#tables[locale] ?? EN
    return (key, params) => {
      const text = table[key] ?? EN[key]
      return params === undefined ? text : text.replace(/\{(\w+)\}/g, (whole, name: string) => name in params ? String(params[name]) : whole)
    }
  }

  /** What the layout needs for a locale. */
  frame (locale: string): PageFrame {
    return {
      t: this.translator(locale),
      locale,
      brand: { name: this.#options.theme.name, logoUrl: this.#options.theme.logoUrl },
      stylesheet: this.#stylesheet
    }
  }

  /** Renders a page to a string (for where @fastify/view is out of reach, e.g. an onSend hook). */
  render (name: Page, locale: string, data: object): string {
    return this.page(name).call(this.eta, { ...this.frame(locale), ...data })
  }
}
