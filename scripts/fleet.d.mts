import type { ChildProcess } from 'node:child_process'

/** An app; `gateway-2`, `gateway-3` … are the extra gateway processes of `gateways: N`. */
export type FleetApp = 'gateway' | 'service-a' | 'service-b' | `gateway-${number}`
export interface FleetUrls { gateway: string, a: string, b: string }
export interface Fleet {
  /** Browser-facing URLs. */
  urls: FleetUrls
  /** Loopback URLs for server-to-server calls and tests. */
  internal: FleetUrls
  /** Every gateway process's loopback URL (`gateways: N`), the first one first. */
  gateways: string[]
  ports: { gateway: number, a: number, b: number }
  /** The apps' processes (the latest one after a restart); `output` keeps their logs across restarts. */
  procs: Partial<Record<FleetApp, ChildProcess & { output?: string }>>
  secrets: { sessions: Record<string, string>, services: Record<string, { secret: string, signingSecret: string }> }
  password: string
  /** Stops every app. */
  stop: () => Promise<void>
  /** Starts one app again: same port, data and secrets. */
  start: (app: FleetApp) => Promise<ChildProcess>
  /** Stops one app with this signal (default SIGTERM; SIGKILL for a crash) and waits for it to exit. */
  stopApp: (app: FleetApp, signal?: NodeJS.Signals) => Promise<void>
  /** The environment an app was started with (to start another process of it on a shared store). */
  envOf: (app: FleetApp) => Record<string, string | undefined>
}
export interface ServiceSeed {
  name: string
  baseUrl: string
  eventUrl?: string
  protocol?: string
  secret: string
  signingSecret: string
}
export interface FleetOptions {
  dataDir: string
  ports?: { gateway?: number, a?: number, b?: number }
  hosts?: { gateway?: string, a?: string, b?: string }
  password?: string
  output?: 'inherit' | 'pipe' | 'ignore'
  env?: Record<string, string>
  /** Extra environment for one app. */
  appEnv?: Partial<Record<FleetApp, Record<string, string>>>
  /** Which apps to start (and, of the example services, register). @default all three */
  apps?: Array<'gateway' | 'service-a' | 'service-b'>
  /** How many gateway processes to start (`gateway`, `gateway-2` …), same environment, own ports; give them a shared DATABASE_URL. @default 1 */
  gateways?: number
  /** The gateway URL the services use (browser and server to server), e.g. a load balancer. @default the first gateway */
  gatewayUrl?: string
  /** Run the apps in their own process group (a terminal Ctrl+C reaches only the caller, which stops them). */
  detached?: boolean
  /** Event URL to register for an example service, by name. */
  eventUrls?: Partial<Record<'service-a' | 'service-b', string>>
  /** More services to register at the gateway. */
  extraServices?: ServiceSeed[]
}
export function freePort (): Promise<number>
/** Whether a loopback TCP port can be listened on now. */
export function bindable (port: number): Promise<boolean>
export function startFleet (options: FleetOptions): Promise<Fleet>
