// Starts the example gateway and services as real processes. Used by `pnpm demo` and by
// the integration and browser tests (each with its own data folder and ports).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const APPS = ['gateway', 'service-a', 'service-b']

/** Whether a loopback TCP port can be listened on now. */
export const bindable = async (port) => await new Promise((resolve) => {
  const srv = createServer()
  srv.once('error', () => resolve(false))
  srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
})

const handedOut = new Set()

/**
 * A free loopback TCP port, below Linux's ephemeral range (32768 and up): a port the kernel
 * hands out for port 0 can be taken by any outgoing connection before the app listens on it.
 */
export async function freePort () {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000)
    if (!handedOut.has(port) && await bindable(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('no free port between 20000 and 32000')
}

const secret = () => randomBytes(32).toString('base64url')

/** Secrets of the fleet, made on first start and kept in the data folder so restarts keep working. */
function loadSecrets (dataDir) {
  const file = join(dataDir, 'secrets.json')
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'))
  const s = {
    sessions: Object.fromEntries(APPS.map((a) => [a, secret()])),
    services: Object.fromEntries(['service-a', 'service-b'].map((a) => [a, {
      secret: secret(),
      signingSecret: 'whsec_' + randomBytes(32).toString('base64')
    }]))
  }
  writeFileSync(file, JSON.stringify(s, null, 2), { mode: 0o600 })
  return s
}

async function waitUntilUp (url, child, deadline) {
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with code ${child.exitCode}`)
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error(`${url} did not come up in time`)
}

/**
 * Starts the example apps (by default all three) as child processes.
 * @param {object} o
 * @param {string} o.dataDir folder for SQLite files and secrets (created)
 * @param {{gateway?: number, a?: number, b?: number}} [o.ports] fixed ports; free ones otherwise
 * @param {{gateway?: string, a?: string, b?: string}} [o.hosts] host names browsers use (default 127.0.0.1)
 * @param {string} [o.password] the demo user's password
 * @param {'inherit'|'pipe'|'ignore'} [o.output] what to do with the apps' logs
 * @param {Record<string, string>} [o.env] extra environment for every app
 * @param {{gateway?: Record<string, string>, 'service-a'?: Record<string, string>, 'service-b'?: Record<string, string>}} [o.appEnv]
 *   extra environment for one app
 * @param {Array<'gateway'|'service-a'|'service-b'>} [o.apps] which apps to start (and, of the services, register)
 * @param {boolean} [o.detached] run the apps in their own process group, so a terminal's Ctrl+C reaches
 *   only the caller, which then stops them (the demo)
 * @param {Record<string, string>} [o.eventUrls] event URL to register for an example service, by name (e.g. a proxy)
 * @param {Array<{name: string, baseUrl: string, eventUrl?: string, protocol?: string, secret: string, signingSecret: string}>} [o.extraServices]
 *   more services to register at the gateway (e.g. stand-in processes the caller runs)
 * @param {number} [o.gateways] how many gateway processes to start (`gateway`, `gateway-2`, …), each on its own
 *   port with the same environment: give them a shared database (`appEnv.gateway.DATABASE_URL`) (default 1)
 * @param {string} [o.gatewayUrl] the gateway URL the services use (browser and server to server), e.g. a load
 *   balancer in front of several gateway processes (default: the first gateway)
 */
export async function startFleet (o) {
  mkdirSync(o.dataDir, { recursive: true })
  const secrets = loadSecrets(o.dataDir)
  const base = APPS.filter((a) => o.apps === undefined || o.apps.includes(a))
  const extraGateways = base.includes('gateway') ? Array.from({ length: Math.max(0, (o.gateways ?? 1) - 1) }, (_, i) => `gateway-${i + 2}`) : []
  const apps = [...base.slice(0, 1), ...extraGateways, ...base.slice(1)]
  const gatewayPorts = {}
  for (const g of extraGateways) gatewayPorts[g] = await freePort()
  const ports = {
    gateway: o.ports?.gateway ?? await freePort(),
    a: o.ports?.a ?? await freePort(),
    b: o.ports?.b ?? await freePort()
  }
  const host = { gateway: '127.0.0.1', a: '127.0.0.1', b: '127.0.0.1', ...o.hosts }
  const urls = {
    gateway: `http://${host.gateway}:${ports.gateway}`,
    a: `http://${host.a}:${ports.a}`,
    b: `http://${host.b}:${ports.b}`
  }
  const internal = {
    gateway: `http://127.0.0.1:${ports.gateway}`,
    a: `http://127.0.0.1:${ports.a}`,
    b: `http://127.0.0.1:${ports.b}`
  }
  /** Every gateway process's loopback URL, the first one first. */
  const gateways = [internal.gateway, ...extraGateways.map((g) => `http://127.0.0.1:${gatewayPorts[g]}`)]
  // Every browser of a test comes from 127.0.0.1: the services' per-client sign-in budget is
  // raised for the fleet (LOGIN_RATE_LIMIT, sign-ins per minute; the plugin's default is 30).
  const common = { NODE_ENV: 'development', LOG_LEVEL: 'warn', HOST: '127.0.0.1', LOGIN_RATE_LIMIT: '600', ...o.env }
  const serviceSeeds = [['service-a', 'a', 'Service A'], ['service-b', 'b', 'Service B']].filter(([name]) => apps.includes(name)).map(([name, key, displayName]) => ({
    name,
    displayName,
    baseUrl: urls[key],
    eventUrl: o.eventUrls?.[name] ?? `${internal[key]}/sso/event/`,
    secret: secrets.services[name].secret,
    signingSecret: secrets.services[name].signingSecret
  }))
  const envs = {
    gateway: {
      PORT: String(ports.gateway),
      DATABASE: join(o.dataDir, 'gateway.sqlite'),
      SESSION_SECRET: secrets.sessions.gateway,
      SSO_SERVICES: JSON.stringify([...serviceSeeds, ...(o.extraServices ?? [])]),
      DEMO_USER: 'alice',
      DEMO_PASSWORD: o.password ?? 'alice-demo-password'
    },
    'service-a': serviceEnv('service-a', ports.a),
    'service-b': serviceEnv('service-b', ports.b)
  }
  function serviceEnv (name, port) {
    return {
      PORT: String(port),
      DATABASE: join(o.dataDir, `${name}.sqlite`),
      SESSION_SECRET: secrets.sessions[name],
      GATEWAY_URL: o.gatewayUrl ?? urls.gateway,
      GATEWAY_INTERNAL_URL: o.gatewayUrl ?? internal.gateway,
      SSO_TOKEN: secrets.services[name].secret,
      SSO_SIGNING_SECRET: secrets.services[name].signingSecret
    }
  }
  for (const g of extraGateways) envs[g] = { ...envs.gateway, PORT: String(gatewayPorts[g]) }
  const keyOf = (app) => app === 'gateway' ? 'gateway' : app === 'service-a' ? 'a' : 'b'
  const homeOf = (app) => app.startsWith('gateway') ? 'gateway' : app
  const upUrl = (app) => app in gatewayPorts ? `http://127.0.0.1:${gatewayPorts[app]}/` : `${internal[keyOf(app)]}/`

  /** @type {Record<string, import('node:child_process').ChildProcess & {output?: string}>} */
  const procs = {}
  /** Starts one app (again: same port, data and secrets) and waits until it answers. */
  async function start (app) {
    const running = procs[app]
    if (running !== undefined && running.exitCode === null && running.signalCode === null) throw new Error(`${app} is already running`)
    const child = spawn(process.execPath, [join(ROOT, 'examples', homeOf(app), 'dist', 'server.js')], {
      env: { ...process.env, ...common, ...envs[app], ...o.appEnv?.[homeOf(app)] },
      stdio: ['ignore', o.output ?? 'pipe', o.output ?? 'pipe'],
      detached: o.detached === true
    })
    procs[app] = child
    if ((o.output ?? 'pipe') === 'pipe') {
      // Earlier runs' output is kept: a test reads what a service logged before and after a restart.
      child.output = running?.output ?? ''
      const keep = (d) => { child.output = (child.output + d).slice(-200_000) }
      child.stdout.on('data', keep)
      child.stderr.on('data', keep)
    }
    await waitUntilUp(upUrl(app), child, Date.now() + 20000)
    return child
  }
  /** Stops one app (SIGTERM: a graceful close; SIGKILL: a crash) and waits for it to exit. */
  async function stopApp (app, signal = 'SIGTERM') {
    const child = procs[app]
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    await new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill(signal)
      setTimeout(() => child.kill('SIGKILL'), 5000).unref()
    })
  }
  const stop = async () => {
    await Promise.all(Object.keys(procs).map((app) => stopApp(app)))
  }
  try {
    // The gateway first: it registers the services the others present secrets for.
    for (const app of apps) await start(app)
  } catch (err) {
    await stop()
    const logs = Object.entries(procs).map(([k, p]) => `--- ${k}\n${p.output ?? ''}`).join('\n')
    throw new Error(`${err.message}\n${logs}`)
  }
  /** The environment an app was started with (to start another process of it: several processes on a shared store). */
  const envOf = (app) => ({ ...process.env, ...common, ...envs[app], ...o.appEnv?.[app] })
  return { urls, internal, gateways, ports, procs, secrets, stop, start, stopApp, envOf, password: envs.gateway.DEMO_PASSWORD }
}
