import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../scripts/fleet.mjs'

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))

/** A strict django-sso stand-in process (test/fixtures/django-*.mjs). */
export interface DjangoPeer {
  url: string
  port: number
  proc: ChildProcess
  /** Its test-only `/_state`. */
  state: <T = Record<string, any>>() => Promise<T>
  stop: () => Promise<void>
}

/** A free port for a peer, to be known before the gateway that registers it starts. */
export const peerPort = freePort

/**
 * Starts `django-service.mjs` or `django-gateway.mjs` on `port` with `env`, and waits until it listens.
 */
export async function startDjangoPeer (kind: 'service' | 'gateway', port: number, env: Record<string, string>): Promise<DjangoPeer> {
  const proc = spawn(process.execPath, [`${FIXTURES}django-${kind}.mjs`], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('listening')) resolve()
    })
    proc.once('exit', (code) => reject(new Error(`django-${kind} stand-in exited with ${code}`)))
    setTimeout(() => reject(new Error(`django-${kind} stand-in did not start`)), 10_000).unref()
  })
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    port,
    proc,
    state: async <T>() => await (await fetch(`${url}/_state`)).json() as T,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      await new Promise((resolve) => {
        proc.once('exit', resolve)
        proc.kill('SIGTERM')
      })
    }
  }
}
