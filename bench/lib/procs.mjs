// Server processes of a bench run: spawned with `node`, waited for, stopped by their own PID;
// their CPU read from /proc/<pid>/stat.
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

const children = new Set()
let logDir = null

export { freePort } from '../../scripts/fleet.mjs'

/**
 * Where the servers' logs go, one file each: a production server writes its log lines itself
 * (paid for by the server); the bench never reads them through a pipe (that would be client CPU).
 */
export function setLogDir (dir) {
  logDir = dir
}

/** The last `bytes` of a child's log (for error messages). */
export function logTail (child, bytes = 4000) {
  if (child.logFile === undefined) return child.output ?? ''
  try {
    const size = statSync(child.logFile).size
    const fd = openSync(child.logFile, 'r')
    const buf = Buffer.alloc(Math.min(bytes, size))
    readSync(fd, buf, 0, buf.length, size - buf.length)
    closeSync(fd)
    return buf.toString('utf8')
  } catch {
    return ''
  }
}

let started = 0
/**
 * Starts `node [nodeArgs] script` with `env` (production: NODE_ENV=production, pino at `info`);
 * resolves once `readyUrl` answers. Output goes to a log file (see setLogDir).
 */
export async function start (name, script, { env = {}, nodeArgs = [], readyUrl, timeoutMs = 60_000 } = {}) {
  const logFile = logDir === null ? undefined : join(logDir, `${name}-${++started}.log`)
  const fd = logFile === undefined ? 'ignore' : openSync(logFile, 'a')
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', fd, fd]
  })
  if (typeof fd === 'number') closeSync(fd)
  child.benchName = name
  child.logFile = logFile
  children.add(child)
  child.once('exit', () => children.delete(child))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}:\n${logTail(child)}`)
    try {
      const res = await fetch(readyUrl, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      break
    } catch {
      if (Date.now() > deadline) {
        await stop(child)
        throw new Error(`${name} did not come up in ${timeoutMs} ms:\n${logTail(child)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return child
}

/** SIGTERM to this child's PID, SIGKILL to the same PID after `graceMs`. */
export async function stop (child, graceMs = 10_000) {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => {
    child.once('exit', resolve)
    process.kill(child.pid, 'SIGTERM')
    setTimeout(() => { if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL') }, graceMs).unref()
  })
}

export async function stopAll () {
  await Promise.all([...children].map((c) => stop(c)))
}

/** Resident set size of a process, in bytes (Linux /proc). */
export function rssOf (pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? null : Number(m[1]) * 1024
}

/** Runs `node script` to completion and parses the last line of its stdout as JSON. */
export async function runJson (script, { env = {}, args = [], nodeArgs = [] } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err = (err + d).slice(-20_000) })
  const code = await new Promise((resolve) => child.once('exit', resolve))
  children.delete(child)
  if (code !== 0) throw new Error(`${script} exited with ${code}:\n${err}`)
  return JSON.parse(out.trim().split('\n').pop())
}

const statFields = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** CPU seconds (user + system, all threads) a process has used so far (Linux /proc, 100 Hz ticks). */
export function cpuOf (pid) {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12])) / 100
}

/**
 * CPU seconds of the load side: this process (every thread: the worker threads that make
 * load) plus its children that have ended (wrk runs, once reaped).
 */
export function clientCpu () {
  const f = statFields('self')
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100
}

/** CPU seconds the whole machine has spent busy so far (all cores; /proc/stat, 100 Hz ticks). */
export function machineBusy () {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100
}

/** The machine's load average over the last minute. */
export function loadAverage () {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
}

/**
 * Waits (at most `maxMs`) until processes other than ours use less than `threshold`
 * cores over a 500 ms sample; answers what they used at the last sample.
 */
export async function waitQuiet (ours, { threshold = 0.3, maxMs = 20_000 } = {}) {
  const deadline = Date.now() + maxMs
  for (;;) {
    const mine = () => clientCpu() + ours.reduce((a, p) => a + cpuOf(p.pid), 0)
    const m0 = machineBusy()
    const o0 = mine()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const others = (machineBusy() - m0 - (mine() - o0)) / 0.5
    if (others < threshold || Date.now() > deadline) return Math.max(0, Math.round(others * 100) / 100)
  }
}

/**
 * Measures the CPU of each server process (by PID) and of the load side while `fn` runs.
 * Answers seconds of CPU (not rates): `servers` by name, `client`, `others` (the rest of the
 * machine), and the wall time.
 */
export async function measureCpu (servers, fn) {
  const before = Object.fromEntries(Object.entries(servers).map(([k, p]) => [k, cpuOf(p.pid)]))
  const client0 = clientCpu()
  const machine0 = machineBusy()
  const t0 = performance.now()
  const result = await fn()
  const wall = (performance.now() - t0) / 1000
  const serverSeconds = {}
  for (const [k, p] of Object.entries(servers)) serverSeconds[k] = cpuOf(p.pid) - before[k]
  const client = clientCpu() - client0
  const ours = Object.values(serverSeconds).reduce((a, b) => a + b, 0) + client
  return { result, wall, serverSeconds, client, others: Math.max(0, machineBusy() - machine0 - ours) }
}
