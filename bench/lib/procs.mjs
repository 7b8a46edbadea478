// Server processes of a bench run: spawned with `node`, waited for, stopped by their own PID.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

const children = new Set()

export { freePort } from '../../scripts/fleet.mjs'

/**
 * Starts `node [nodeArgs] script` with `env`; resolves once `readyUrl` answers.
 * The child's output is kept (last 20 kB) for error messages.
 */
export async function start (name, script, { env = {}, nodeArgs = [], readyUrl, timeoutMs = 60_000 } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.benchName = name
  child.output = ''
  const keep = (d) => { child.output = (child.output + d).slice(-20_000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  children.add(child)
  child.once('exit', () => children.delete(child))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}:\n${child.output}`)
    try {
      const res = await fetch(readyUrl, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      break
    } catch {
      if (Date.now() > deadline) {
        await stop(child)
        throw new Error(`${name} did not come up in ${timeoutMs} ms:\n${child.output}`)
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

/** CPU seconds (user + system) a process has used so far (Linux /proc, 100 Hz ticks). */
export function cpuOf (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** CPU seconds the whole machine has spent busy so far (all cores; /proc/stat, 100 Hz ticks). */
export function machineBusy () {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100
}

/**
 * Waits (at most `maxMs`) until processes other than ours use less than `threshold`
 * cores over a 500 ms sample; answers what they used at the last sample.
 */
export async function waitQuiet (ours, { threshold = 0.3, maxMs = 20_000 } = {}) {
  const deadline = Date.now() + maxMs
  for (;;) {
    const mine = () => ours.reduce((a, p) => a + (p === 'self' ? ((u) => (u.user + u.system) / 1e6)(process.cpuUsage()) : cpuOf(p.pid)), 0)
    const m0 = machineBusy()
    const o0 = mine()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const others = (machineBusy() - m0 - (mine() - o0)) / 0.5
    if (others < threshold || Date.now() > deadline) return Math.max(0, Math.round(others * 100) / 100)
  }
}

/** Measures how busy each process was while `fn` ran: CPU seconds per wall second. */
export async function busy (procs, fn) {
  const before = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p === 'self' ? process.cpuUsage() : cpuOf(p.pid)]))
  const machine0 = machineBusy()
  const t0 = performance.now()
  const result = await fn()
  const wall = (performance.now() - t0) / 1000
  const cpu = {}
  for (const [k, p] of Object.entries(procs)) {
    const used = p === 'self'
      ? ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(before[k]))
      : cpuOf(p.pid) - before[k]
    cpu[k] = Math.round(used / wall * 100) / 100
  }
  const ours = Object.values(cpu).reduce((a, b) => a + b, 0)
  // What the rest of the machine (other users' builds and tests) took meanwhile, in cores.
  cpu.others = Math.max(0, Math.round(((machineBusy() - machine0) / wall - ours) * 100) / 100)
  return { result, cpu }
}
