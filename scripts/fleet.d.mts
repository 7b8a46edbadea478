import type { ChildProcess } from 'node:child_process'

export interface FleetUrls { gateway: string, a: string, b: string }
export interface Fleet {
  /** Browser-facing URLs. */
  urls: FleetUrls
  /** Loopback URLs for server-to-server calls and tests. */
  internal: FleetUrls
  ports: { gateway: number, a: number, b: number }
  procs: Record<'gateway' | 'service-a' | 'service-b', ChildProcess & { output?: string }>
  secrets: { sessions: Record<string, string>, services: Record<string, { secret: string, signingSecret: string }> }
  password: string
  stop: () => Promise<void>
}
export interface FleetOptions {
  dataDir: string
  ports?: { gateway?: number, a?: number, b?: number }
  hosts?: { gateway?: string, a?: string, b?: string }
  password?: string
  output?: 'inherit' | 'pipe' | 'ignore'
  env?: Record<string, string>
}
export function freePort (): Promise<number>
export function startFleet (options: FleetOptions): Promise<Fleet>
