import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** One more process of an example app (e.g. a second gateway on the same store), stopped at teardown by PID. */
export interface ExtraProcess {
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

/** Starts `examples/<app>/dist/server.js` with `env` and waits until `url` answers. */
export async function startExtra (app: string, env: Record<string, string | undefined>, url: string): Promise<ExtraProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'examples', app, 'dist', 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d: Buffer): void => { output = (output + d.toString()).slice(-100_000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 5000).unref()
    })
  }
  const deadline = Date.now() + 60_000 // generous: the machine is shared and often loaded
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${app} exited with ${child.exitCode}:\n${output}`)
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      break
    } catch {
      if (Date.now() > deadline) {
        await stop()
        throw new Error(`${app} did not come up:\n${output}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return { child, output: () => output, stop }
}
