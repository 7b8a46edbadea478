import type { AccountSync } from './account-sync.js'
import type { GatewayClient } from './gateway-client.js'
import type { Pages } from './html.js'
import type { ServiceState } from './session.js'
import type { ResolvedOptions } from './types.js'

/** What the route plugins receive as their options. */
export interface RouteContext {
  options: ResolvedOptions
  db: ServiceState
  client: GatewayClient
  sync: AccountSync
  /** The page kit: templates, messages, theme. */
  pages: Pages
}

/** A path and its trailing-slash form: the protocol serves both. */
export function bothForms (path: string): [string, string] {
  return [path, `${path}/`]
}
