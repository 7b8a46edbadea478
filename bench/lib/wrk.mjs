// Debian's wrk (a C load generator, much cheaper per request than any Node client) for the rows
// whose requests are fixed or come from a list. Absent wrk, the caller falls back to worker threads.
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('./wrk.lua', import.meta.url))
let available

/** Whether `wrk` is installed (BENCH_NO_WRK=1 pretends it is not). */
export function hasWrk () {
  if (process.env.BENCH_NO_WRK === '1') return false
  available ??= spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined
  return available
}

/**
 * Runs wrk against `url` for `durationMs` (whole seconds, at least 1) with `connections`; answers
 * { ops, seconds, rate, errors, latency: { p50, p99, max, mean } } (ms). `pairs`: a file of form
 * bodies for get + make_used pairs (see wrk.lua); otherwise one fixed request.
 */
export async function wrk ({ url, connections, durationMs, threads = 1, method = 'GET', body, contentType, pairs, timeoutS = 30 }) {
  const u = new URL(url)
  const env = { ...process.env, BENCH_METHOD: method, BENCH_PATH: u.pathname + u.search, BENCH_THREADS: String(threads) }
  if (body !== undefined) env.BENCH_BODY = body
  if (contentType !== undefined) env.BENCH_CTYPE = contentType
  if (pairs !== undefined) env.BENCH_PAIRS = pairs
  const seconds = Math.max(1, Math.round(durationMs / 1000))
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', `${timeoutS}s`, '-s', SCRIPT, u.origin + '/']
  const child = spawn('wrk', args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  const code = await new Promise((resolve) => child.once('close', resolve))
  const line = out.split('\n').find((l) => l.startsWith('{'))
  if (code !== 0 || line === undefined) throw new Error(`wrk exited with ${code}: ${err}${out}`)
  const r = JSON.parse(line)
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0)
  return { ops: r.requests, seconds: r.seconds, rate: r.requests / r.seconds, errors, errorKinds: r.errors, exhausted: r.exhausted > 0, latency: r.latency }
}
