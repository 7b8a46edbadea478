// `pnpm bench [--quick] [--profile] [--only=a,b]`: real processes on loopback, every figure next to
// a ceiling (a bare Fastify route) measured in the same run, by throughput and by the SERVER's CPU
// per request (/proc/<pid>/stat of our server processes only; the load generator's CPU is reported
// apart and never counted). Load: Debian's wrk where requests are fixed or listed, worker threads
// (undici) for browser flows. Every window lasts until the outbox has delivered what it queued.
// Writes bench/results/<mode>.json; a full run also writes BENCHMARKS.md at the root.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { signWebhook } from 'fastify-sso-protocol'
import { closedLoop, summarize } from './lib/load.mjs'
import { Browser, closePools, csrfOf, form, FORM, http } from './lib/http.mjs'
import { gatewayLogin, hop, pmap } from './lib/flows.mjs'
import { cpuOf, freePort, loadAverage, logTail, measureCpu, rssOf, runJson, setLogDir, start, stop, stopAll, waitQuiet } from './lib/procs.mjs'
import { LOAD_THREADS, workerLoad } from './lib/workers.mjs'
import { hasWrk, wrk } from './lib/wrk.mjs'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = join(HERE, '..')
const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const PROFILE = argv.includes('--profile')
const ONLY = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',')
const mode = ONLY !== undefined ? 'partial' : PROFILE ? 'profile' : QUICK ? 'quick' : 'full'
const wanted = (name) => ONLY === undefined ? (!PROFILE || ['protocol', 'hop'].includes(name)) : ONLY.includes(name)
/** PostgreSQL variants of the gateway rows: a server URL (a fresh database is made and dropped). */
const PG_URL = process.env.BENCH_DATABASE_URL

/** Every load is bounded in time (ms) and count. */
const C = QUICK
  ? { ceilingMs: 1000, loadMs: 1000, pairTokens: 3000, hopMs: 1500, loginMs: 2000, hashMs: 1500, fanoutRounds: 1, drain: 1000, scale: [1_000, 10_000, 100_000], sessions: 10_000, touch: 2_000, storeMs: 1000, warmLogins: 40, settleTimeoutMs: 60_000 }
  : { ceilingMs: 4000, loadMs: 6000, pairTokens: 60_000, hopMs: 8000, loginMs: 8000, hashMs: 4000, fanoutRounds: 3, drain: 10_000, scale: [1_000, 100_000, 1_000_000], sessions: 100_000, touch: 50_000, storeMs: 4000, warmLogins: 300, settleTimeoutMs: 180_000 }
const CONCURRENCY = 32
const HOP_BROWSERS = 64
const LOGIN_CONCURRENCY = 16
const WARM_LOGIN_CONCURRENCY = 100
const SERVICES = 20
const USERS = 400
const PASSWORD = 'correct horse battery staple'
const GEN = hasWrk() ? 'wrk' : 'worker threads'

const dataDir = join(HERE, 'results', `data-${process.pid}`)
const profDir = join(HERE, 'results', 'profiles')
mkdirSync(dataDir, { recursive: true })
setLogDir(dataDir)
const secret = () => randomBytes(32).toString('base64url')
const log = (...a) => console.error(`[bench ${((performance.now()) / 1000).toFixed(1)}s]`, ...a)
const round = (n, d = 0) => (n === null || n === undefined || Number.isNaN(n) ? null : Math.round(n * 10 ** d) / 10 ** d)

const results = {
  mode,
  date: new Date().toISOString(),
  machine: {
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAverageAtStart: loadAverage()
  },
  generator: GEN === 'wrk' ? 'wrk (1 thread) for fixed and listed requests; worker threads for browser flows' : `worker threads (${LOAD_THREADS}) for everything: wrk is not installed (apt-get install wrk)`,
  config: { ...C, concurrency: CONCURRENCY, hopBrowsers: HOP_BROWSERS, loginConcurrency: LOGIN_CONCURRENCY, services: SERVICES, loadThreads: LOAD_THREADS, logLevel: 'info' },
  scenarios: {}
}
if (GEN !== 'wrk') log('wrk is not installed: load comes from worker threads only (apt-get install wrk for the cheaper generator)')

// ---------------------------------------------------------------- processes
const ceilingPort = await freePort()
const services = []
for (let i = 0; i < SERVICES; i++) {
  const port = await freePort()
  services.push({
    name: `svc${i}`, port, url: `http://127.0.0.1:${port}`, token: secret(), sessionSecret: secret(),
    signingSecret: 'whsec_' + randomBytes(32).toString('base64'), database: join(dataDir, `service-${i}.sqlite`)
  })
}
const S0 = services[0]
const gatewaySessionSecret = secret()
const profArgs = (name) => PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, name)}`] : []

let ceilingProc
/** The gateway and its services: `G` (URL), `gateway`, `services` (processes). */
let main
async function startFleet ({ label = 'sqlite', env = {}, instances = 1 } = {}) {
  const ports = []
  for (let i = 0; i < instances; i++) ports.push(await freePort())
  const G = `http://127.0.0.1:${ports[0]}`
  const gateways = []
  for (const [i, port] of ports.entries()) {
    gateways.push(await start(`gateway-${label}-${i}`, join(HERE, 'servers/gateway.mjs'), {
      nodeArgs: profArgs(`gateway-${label}`),
      env: {
        PORT: String(port),
        DATABASE: join(dataDir, `gateway-${label}.sqlite`),
        SESSION_SECRET: gatewaySessionSecret,
        SERVICES: JSON.stringify(services.map((s) => ({ name: s.name, baseUrl: s.url, eventUrl: `${s.url}/sso/event/`, secret: s.token, signingSecret: s.signingSecret }))),
        USERS: String(USERS),
        PASSWORD,
        BENCH_DEBUG: '1',
        ...env
      },
      readyUrl: `http://127.0.0.1:${port}/__bench/ping`
    }))
  }
  const servicesProc = await start(`services-${label}`, join(HERE, 'servers/services.mjs'), {
    nodeArgs: profArgs(`services-${label}`),
    env: { GATEWAY_URL: G, SERVICES: JSON.stringify(services) },
    readyUrl: `${services[SERVICES - 1].url}/__bench/events`
  })
  return { label, G, gateways, gateway: gateways[0], services: servicesProc, urls: ports.map((p) => `http://127.0.0.1:${p}`) }
}
async function stopFleet (fleet) {
  await stop(fleet.services)
  for (const g of fleet.gateways) await stop(g)
}

// ---------------------------------------------------------------- measuring
/** Our server processes of a fleet, by name (what a window bills). */
const serversOf = (fleet) => Object.fromEntries([...fleet.gateways.map((g, i) => [`gateway${i === 0 ? '' : i}`, g]), ['services', fleet.services]])

/**
 * Waits (bounded by C.settleTimeoutMs, reported) until the outbox of the gateway at `url` has
 * delivered what was queued. Asks in rounds of at most 5 s: the servers close a socket idle for 10 s.
 */
async function settleAt (url) {
  const t0 = performance.now()
  const deadline = t0 + C.settleTimeoutMs
  for (;;) {
    const res = await http(`${url}/__bench/settle`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timeoutMs: Math.min(5000, Math.max(1, deadline - performance.now())) }), expect: 200
    })
    const s = JSON.parse(res.text)
    if (s.drained || performance.now() >= deadline) return { ms: round(performance.now() - t0, 1), drained: s.drained, pending: s.pending, timeoutMs: C.settleTimeoutMs }
  }
}

async function settle (fleet) {
  const s = await settleAt(fleet.G)
  if (!s.drained) log(`outbox not drained within ${s.timeoutMs} ms: ${s.pending} events pending (reported, not fatal)`)
  return s
}

/**
 * One measured window: `run(measure)` makes the load and calls `measure(fn)` around it once its
 * set-up is done. The window's CPU covers the load and, with `fleet`, the outbox drain after it.
 * Answers throughput, latency, server CPU per op (our server processes only), client CPU apart.
 */
async function window (servers, run, { fleet, opsPerUnit = 1, onStart } = {}) {
  const othersBefore = QUICK ? null : await waitQuiet(Object.values(servers), { maxMs: 5000 })
  let m = null
  let drain = null
  const r = await run(async (fn) => {
    // What the set-up queued (sign-ins, warm-up hops) is delivered before the window opens.
    if (fleet !== undefined) await settle(fleet)
    if (onStart !== undefined) await onStart()
    const pg0 = await pgCpu(fleet)
    m = await measureCpu(servers, async () => {
      const out = await fn()
      if (fleet !== undefined) drain = await settle(fleet)
      return out
    })
    if (pg0 !== null) {
      // The PostgreSQL backends serving our gateways are our servers too.
      const pg1 = await pgCpu(fleet)
      let used = 0
      for (const [pid, cpu] of pg1) used += cpu - (pg0.get(pid) ?? 0)
      m.serverSeconds.postgres = used
      m.others = Math.max(0, m.others - used)
    }
    return m.result
  })
  // A few failures on an overloaded machine (a service's call to the gateway timing out) are
  // reported in the row; more than 5 % fail the scenario.
  if (r.ops === 0 || r.errors > r.ops * 0.05) throw new Error(`${r.errors} of ${r.ops} operations failed ${r.firstError ?? ''}`)
  const serverSeconds = Object.values(m.serverSeconds).reduce((a, b) => a + b, 0)
  const units = r.ops * opsPerUnit
  return {
    rate: r.rate * opsPerUnit,
    ops: units,
    errors: r.errors,
    firstError: r.firstError,
    exhausted: r.exhausted,
    seconds: round(r.seconds, 2),
    p50: round(r.latency.p50, 2),
    p99: round(r.latency.p99, 2),
    drain,
    server: {
      msPerOp: serverSeconds / units * 1000,
      // Busy cores during the load (not the drain): a server at ~1 core was the limit, not the client.
      cores: Object.fromEntries(Object.entries(m.serverSeconds).map(([k, v]) => [k, round(v / m.wall, 2)]))
    },
    client: { msPerOp: m.client / units * 1000, cores: round(m.client / m.wall, 2) },
    others: round(m.others / m.wall, 2),
    othersBefore,
    loadAverage: loadAverage()
  }
}

/** CPU seconds so far of each PostgreSQL backend connected to the fleet's database (null without one). */
async function pgCpu (fleet) {
  if (fleet?.pg === undefined) return null
  const { rows } = await fleet.pg.client.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [fleet.pg.name])
  const out = new Map()
  for (const { pid } of rows) {
    try { out.set(pid, cpuOf(pid)) } catch { /* ended meanwhile */ }
  }
  return out
}

/** Load of one fixed request: wrk (after a 1 s unmeasured warm-up), else worker threads. */
function fixedLoad ({ url, method = 'GET', body, contentType, durationMs, connections = CONCURRENCY }) {
  return async (measure) => {
    if (GEN === 'wrk') {
      await wrk({ url, method, body, contentType, durationMs: 1000, connections })
      return await measure(() => wrk({ url, method, body, contentType, durationMs, connections }))
    }
    const headers = contentType === undefined ? {} : { 'content-type': contentType }
    return await workerLoad({ flow: 'request', params: { url, method, headers, body }, concurrency: connections, durationMs, measure })
  }
}

async function ceiling (label) {
  const r = await window({ ceiling: ceilingProc }, fixedLoad({ url: `http://127.0.0.1:${ceilingPort}/`, durationMs: C.ceilingMs }))
  log(`ceiling (${label}): ${round(r.rate)} req/s, server ${round(r.server.msPerOp, 4)} ms CPU/req (${r.server.cores.ceiling} cores), client ${r.client.cores} cores`)
  return r
}

const svcBody = (s, fields) => form({ token: s.token, ...fields })

/** The row data kept: throughput and server-CPU ratios against `ceil`. */
function row (r, ceil, extra = {}) {
  return {
    rate: round(r.rate, 1),
    p50: r.p50,
    p99: r.p99,
    ops: r.ops,
    errors: r.errors,
    firstError: r.firstError,
    seconds: r.seconds,
    drain: r.drain,
    serverMsPerOp: round(r.server.msPerOp, 4),
    serverCores: r.server.cores,
    clientMsPerOp: round(r.client.msPerOp, 4),
    clientCores: r.client.cores,
    others: r.others,
    othersBefore: r.othersBefore,
    loadAverage: r.loadAverage,
    ...(ceil === undefined
      ? {}
      : { ratio: round(r.rate / ceil.rate, 4), serverRatio: round(ceil.server.msPerOp / r.server.msPerOp, 4) }),
    ...extra
  }
}
const ceilingRow = (r) => row(r, undefined, { serverMsPerOp: round(r.server.msPerOp, 5) })

const gwStats = async (fleet, reset = false) => JSON.parse((await http(`${fleet.G}/__bench/stats${reset ? '?reset=1' : ''}`, { expect: 200 })).text)
const users = (from, n) => Array.from({ length: n }, (_, i) => `bench${from + i}`)

// ---------------------------------------------------------------- scenarios
async function protocolEndpoints (fleet, key = 'protocol') {
  const ceil = await ceiling(`protocol ${fleet.label}`)
  const formBody = svcBody(S0, { next_url: '/private' })
  const ct = FORM['content-type']
  const ceilForm = await window({ ceiling: ceilingProc }, fixedLoad({ url: `http://127.0.0.1:${ceilingPort}/form`, method: 'POST', body: formBody, contentType: ct, durationMs: C.ceilingMs }))
  const servers = serversOf(fleet)
  const ob = await window(servers, fixedLoad({ url: `${fleet.G}/sso/obtain/`, method: 'POST', body: formBody, contentType: ct, durationMs: C.loadMs }), { fleet })
  log(`obtain (${fleet.label}): ${round(ob.rate)} req/s, ${round(ob.rate / ceil.rate * 100, 1)}% of the ceiling; server CPU ${round(ob.server.msPerOp, 4)} ms/req = ${round(ceil.server.msPerOp / ob.server.msPerOp * 100, 1)}% of the ceiling's`)

  // Authenticated tokens, token k with next_url /p/k (see servers/gateway.mjs /__bench/tokens).
  const t0 = performance.now()
  const bodies = []
  // In chunks: a server closes a socket that stays silent for 10 s (RECOMMENDED_SERVER_OPTIONS).
  // Fewer on PostgreSQL: its rate is a fraction of SQLite's, and each token costs two round trips to make.
  const count = fleet.pg === undefined ? C.pairTokens : Math.min(C.pairTokens, 5000)
  for (let made = 0; made < count; made += 1000) {
    const res = await http(`${fleet.G}/__bench/tokens`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: Math.min(1000, count - made), from: made, service: S0.name, username: 'bench1' }), expect: 200
    })
    bodies.push(...JSON.parse(res.text).tokens.map(([t, code]) => svcBody(S0, { authentication_token: t, code })))
  }
  const prepSeconds = (performance.now() - t0) / 1000
  const file = join(dataDir, `pairs-${fleet.label}.txt`)
  writeFileSync(file, bodies.join('\n') + '\n')
  const pairs = await window(servers, async (measure) => {
    if (GEN === 'wrk') return await measure(() => wrk({ url: fleet.G + '/', pairs: file, contentType: ct, durationMs: C.loadMs, connections: CONCURRENCY }))
    const r = await workerLoad({ flow: 'pairs', params: { G: fleet.G, bodies }, concurrency: CONCURRENCY, durationMs: C.loadMs, maxOps: bodies.length, measure })
    return { ...r, ops: r.ops * 2, rate: r.rate * 2 }
  }, { fleet })
  log(`get + make_used (${fleet.label}): ${round(pairs.rate)} req/s, ${round(pairs.rate / ceil.rate * 100, 1)}% of the ceiling; server CPU ${round(pairs.server.msPerOp, 4)} ms/req = ${round(ceil.server.msPerOp / pairs.server.msPerOp * 100, 1)}% of the ceiling's${pairs.exhausted ? ' (tokens ran out)' : ''}`)
  results.scenarios[key] = {
    ceiling: ceilingRow(ceil),
    ceilingFormPost: row(ceilForm, ceil),
    obtain: row(ob, ceil),
    getMakeUsed: row(pairs, ceil, { tokensPrepared: bodies.length, tokenPrepSeconds: round(prepSeconds, 1), tokensRanOut: pairs.exhausted === true })
  }
}

async function silentHop (fleet, key = 'silentHop') {
  const ceil = await ceiling(`hop ${fleet.label}`)
  const r = await window(serversOf(fleet), async (measure) => await workerLoad({
    flow: 'hop', params: { G: fleet.G, url: S0.url, users: users(10, HOP_BROWSERS), password: PASSWORD }, concurrency: HOP_BROWSERS, durationMs: C.hopMs, measure
  }), { fleet })
  log(`silent hop (${fleet.label}): ${round(r.rate)} hops/s; server CPU ${round(r.server.msPerOp, 3)} ms/hop = ${round(ceil.server.msPerOp / r.server.msPerOp * 100, 2)}% of the ceiling's; drain after ${r.drain.ms} ms`)
  results.scenarios[key] = { ceiling: ceilingRow(ceil), browsers: HOP_BROWSERS, hops: row(r, ceil) }
}

async function passwordLogin (fleet) {
  const pings = []
  let storming = false
  let poller
  const r = await window(serversOf(fleet), async (measure) => await workerLoad({
    flow: 'login', params: { url: S0.url, users: users(100, 100), password: PASSWORD }, concurrency: LOGIN_CONCURRENCY, durationMs: C.loginMs, measure
  }), {
    fleet,
    onStart: async () => {
      await gwStats(fleet, true)
      storming = true
      poller = (async () => {
        while (storming) {
          const a = performance.now()
          await http(`${fleet.G}/__bench/ping`, { expect: 200 })
          pings.push(performance.now() - a)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      })()
    }
  })
  storming = false
  await poller
  const stats = await gwStats(fleet, true)
  // The machine's raw rate and the CPU one verify costs: as many at once as the gateway allows
  // (its cores), and libuv's default 4.
  const hashes = []
  for (const threads of [results.machine.cores, 4]) {
    if (!QUICK) await waitQuiet([fleet.gateway, fleet.services, ceilingProc], { maxMs: 5000 })
    hashes.push(await runJson(join(HERE, 'servers/hash.mjs'), { env: { DURATION: String(C.hashMs), UV_THREADPOOL_SIZE: String(threads) } }))
  }
  const hash = hashes.reduce((a, b) => (b.rate > a.rate ? b : a))
  const hashCpu = hashes[0].cpuMsPerOp
  const nonHash = r.server.msPerOp - hashCpu
  log(`password sign-ins: ${round(r.rate, 1)} /s, server CPU ${round(r.server.msPerOp, 1)} ms each, of which argon2 ${round(hashCpu, 1)}; event loop p99 ${stats.eventLoopDelay.p99} ms`)
  const ping = summarize(pings)
  results.scenarios.passwordLogin = {
    logins: row(r, undefined, { concurrency: LOGIN_CONCURRENCY }),
    rawHash: { rate: round(hash.rate, 1), p50: round(hash.p50, 1), cpuMsPerVerify: round(hashCpu, 2), params: hash.params, byThreads: hashes.map((h) => ({ threads: h.concurrency, rate: round(h.rate, 1), cpuMsPerOp: round(h.cpuMsPerOp, 2) })) },
    ratio: round(r.rate / hash.rate, 3),
    nonHashServerMs: round(nonHash, 2),
    eventLoopDelay: stats.eventLoopDelay,
    otherRoute: { count: ping.count, p50: round(ping.p50, 2), p99: round(ping.p99, 2), max: round(ping.max, 2) }
  }
}
async function fanOut (fleet, key = 'fanOut') {
  const rounds = []
  for (let k = 0; k < C.fanoutRounds; k++) {
    const username = `bench${USERS - 1 - k}`
    const b = new Browser()
    await gatewayLogin(fleet.G, b, username, PASSWORD)
    for (const s of services) await hop(b, s.url)
    await settle(fleet)
    await Promise.all(services.map((s) => http(`${s.url}/__bench/events?reset=1`, { expect: 200 })))
    const page = await b.request(`${fleet.G}/logout/`, { expect: 200 })
    const csrf = csrfOf(page.text)
    const t0 = performance.timeOrigin + performance.now()
    await b.request(`${fleet.G}/logout/`, { method: 'POST', headers: FORM, body: form({ _csrf: csrf }), expect: 200 })
    const answered = performance.timeOrigin + performance.now() - t0
    const ended = new Map()
    const deadline = Date.now() + 10_000
    while (ended.size < services.length && Date.now() < deadline) {
      await Promise.all(services.filter((s) => !ended.has(s.name)).map(async (s) => {
        const e = JSON.parse((await http(`${s.url}/__bench/events`, { expect: 200 })).text)
        if (e.endedAt[username] !== undefined) ended.set(s.name, e.endedAt[username] - t0)
      }))
      if (ended.size < services.length) await new Promise((resolve) => setTimeout(resolve, 5))
    }
    if (ended.size < services.length) throw new Error(`fan-out: only ${ended.size} of ${services.length} services ended the session in 10 s`)
    // Every service now sends this browser to sign in again.
    for (const s of services) {
      const res = await b.request(`${s.url}/private`)
      if (res.status === 200) throw new Error(`fan-out: ${s.name} still has the session`)
    }
    const times = [...ended.values()]
    rounds.push({ allMs: round(Math.max(...times), 1), medianMs: round(summarize(times).p50, 1), logoutAnsweredMs: round(answered, 1) })
  }
  log(`fan-out to ${SERVICES}: ${rounds.map((r) => r.allMs).join(', ')} ms`)

  await Promise.all(services.map((s) => http(`${s.url}/__bench/events?reset=1`, { expect: 200 })))
  // Queued in one transaction, then drained by every gateway process of the fleet at once.
  const json = { 'content-type': 'application/json' }
  const pg0 = await pgCpu(fleet)
  const m = await measureCpu(serversOf(fleet), async () => {
    const q = JSON.parse((await http(`${fleet.G}/__bench/enqueue`, { method: 'POST', headers: json, body: JSON.stringify({ count: C.drain }), expect: 200, timeoutMs: 120_000 })).text)
    const t1 = performance.now()
    const settled = await Promise.all(fleet.urls.map(settleAt))
    const drainMs = performance.now() - t1
    const status = JSON.parse((await http(`${fleet.G}/__bench/status`, { expect: 200 })).text)
    return { enqueueMs: q.enqueueMs, drainMs, drained: settled.every((x) => x.drained), status }
  })
  const d = m.result
  let pgSeconds = 0
  if (pg0 !== null) for (const [pid, cpu] of await pgCpu(fleet)) pgSeconds += cpu - (pg0.get(pid) ?? 0)
  const drainServerMs = (Object.values(m.serverSeconds).reduce((a, b) => a + b, 0) + pgSeconds) * 1000
  const counts = await Promise.all(services.map(async (s) => JSON.parse((await http(`${s.url}/__bench/events`, { expect: 200 })).text).deauthenticated))
  const received = counts.reduce((a, b) => a + b, 0)
  const pending = d.status.reduce((a, s) => a + s.pending + s.dead, 0)
  log(`drained ${C.drain} events in ${round(d.drainMs)} ms (${round(C.drain / d.drainMs * 1000)}/s); services applied ${received}`)
  if (!d.drained) log(`drain: not finished within ${C.settleTimeoutMs} ms (reported, not fatal)`)
  else if (received < C.drain || pending > 0) throw new Error(`drain: services applied ${received} of ${C.drain}, ${pending} left`)
  results.scenarios[key] = {
    services: SERVICES,
    rounds,
    allMs: Math.max(...rounds.map((r) => r.allMs)),
    drain: { events: C.drain, ms: round(d.drainMs), perSecond: round(C.drain / d.drainMs * 1000), enqueueMs: round(d.enqueueMs, 1), applied: received, drained: d.drained, serverMsPerEvent: round(drainServerMs / C.drain, 4), gateways: fleet.gateways.length }
  }
}


async function logoutScale () {
  const rows = []
  for (const others of C.scale) {
    const file = join(dataDir, `scale-${others}.sqlite`)
    const filled = await runJson(join(HERE, 'scale.mjs'), { args: [file, String(others), '40'] })
    // Over HTTP: a signed deauthenticate event to a service holding this database.
    const port = await freePort()
    const s = { ...services[0], port, url: `http://127.0.0.1:${port}`, database: file }
    const proc = await start(`scale-service-${others}`, join(HERE, 'servers/services.mjs'), {
      env: { GATEWAY_URL: main.G, SERVICES: JSON.stringify([s]) }, readyUrl: `${s.url}/__bench/events`
    })
    const times = []
    for (const username of ['warm-up', ...filled.httpTargets]) {
      const body = JSON.stringify({ type: 'deauthenticate', username })
      const id = 'evt_' + randomBytes(12).toString('base64url')
      const a = performance.now()
      await http(`${s.url}/sso/event/`, {
        method: 'POST', body, expect: 200,
        headers: { 'content-type': 'application/json', ...signWebhook(s.signingSecret, id, Math.floor(Date.now() / 1000), body) }
      })
      if (username !== 'warm-up') times.push(performance.now() - a)
    }
    const applied = JSON.parse((await http(`${s.url}/__bench/events`, { expect: 200 })).text)
    await stop(proc)
    if (Object.keys(applied.endedAt).length !== filled.httpTargets.length) throw new Error('scale: not every target lost its sessions')
    const t = summarize(times)
    rows.push({
      others, fillSeconds: round(filled.fillMs / 1000, 1), fileMB: round(filled.fileBytes / 2 ** 20, 1),
      destroyByUserMs: { p50: round(filled.destroyByUser.p50, 3), max: round(filled.destroyByUser.max, 3) },
      eventMs: { p50: round(t.p50, 2), max: round(t.max, 2) },
      fullScanMs: round(filled.fullScanMs, 1)
    })
    log(`logout scale ${others}: destroyByUser p50 ${round(filled.destroyByUser.p50, 3)} ms, event ${round(t.p50, 2)} ms, full scan ${round(filled.fullScanMs)} ms`)
    for (const f of [file, file + '-wal', file + '-shm']) rmSync(f, { force: true })
  }
  const first = rows[0]
  const last = rows[rows.length - 1]
  results.scenarios.logoutScale = {
    rows,
    destroyRatio: round(last.destroyByUserMs.p50 / first.destroyByUserMs.p50, 2),
    eventRatio: round(last.eventMs.p50 / first.eventMs.p50, 2)
  }
}


async function sessionStores () {
  const out = {}
  const ceil = await ceiling('session store')
  for (const store of ['memory', 'sqlite', 'plugin']) {
    const port = await freePort()
    const proc = await start(`session-${store}`, join(HERE, 'servers/session-store.mjs'), {
      env: { PORT: String(port), STORE: store, DATABASE: join(dataDir, `session-store-${store}.sqlite`) }, readyUrl: `http://127.0.0.1:${port}/new`
    })
    // The store's server process is what is measured (and only it).
    const r = await window({ store: proc }, fixedLoad({ url: `http://127.0.0.1:${port}/new`, durationMs: C.storeMs }))
    await stop(proc)
    out[store] = row(r, ceil)
    log(`new session per request, ${store}: ${round(r.rate)} req/s, server ${round(r.server.msPerOp, 4)} ms CPU/req`)
  }
  results.scenarios.sessionStore = {
    ceiling: ceilingRow(ceil),
    ...out,
    sqliteToMemory: round(out.sqlite.rate / out.memory.rate, 3),
    sqliteToMemoryServer: round(out.memory.serverMsPerOp / out.sqlite.serverMsPerOp, 3)
  }
}

async function memory (variant = 'default', extraEnv = {}) {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const db = join(dataDir, `memory-gateway-${variant}.sqlite`)
  const proc = await start(`memory-gateway-${variant}`, join(HERE, 'servers/gateway.mjs'), {
    env: { PORT: String(port), DATABASE: db, SESSION_SECRET: gatewaySessionSecret, USERS: String(USERS), PASSWORD, BENCH_DEBUG: '1', ...extraEnv },
    readyUrl: `${url}/__bench/ping`
  })
  // A realistic warm-up: hundreds of password sign-ins, up to WARM_LOGIN_CONCURRENCY at once.
  const t0 = performance.now()
  const browsers = Array.from({ length: C.warmLogins }, () => new Browser())
  // On a slow machine a sign-in can wait for the hashing queue longer than the server keeps a
  // silent socket (10 s): such a sign-in is counted and tried again (at most 3 times).
  let warmRetries = 0
  await pmap(browsers, WARM_LOGIN_CONCURRENCY, async (b, i) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await gatewayLogin(url, b, `bench${i % USERS}`, PASSWORD)
      } catch (err) {
        if (attempt >= 3) throw err
        warmRetries++
      }
    }
  })
  const warmSeconds = (performance.now() - t0) / 1000
  const cookie = browsers[0].cookieHeader(url)
  // Every route used below, warmed up too.
  await closedLoop({ concurrency: CONCURRENCY, durationMs: 3000, maxOps: 3000, op: async () => { await http(`${url}/welcome/`, { headers: { cookie }, expect: 200 }) } })
  const rss0 = rssOf(proc.pid)
  const before = JSON.parse((await http(`${url}/__bench/stats`, { expect: 200 })).text)
  const sid = decodeURIComponent(/bench_gateway_session=([^;]+)/.exec(cookie)[1]).split('.').slice(0, -1).join('.')
  const cookies = []
  for (let made = 0; made < C.sessions; made += 5000) {
    const res = await http(`${url}/__bench/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: Math.min(5000, C.sessions - made), sid }), expect: 200 })
    cookies.push(...JSON.parse(res.text).cookies)
  }
  const touched = await closedLoop({
    concurrency: CONCURRENCY, durationMs: 120_000, maxOps: Math.min(C.touch, cookies.length),
    op: async (_w, i) => {
      const res = await http(`${url}/welcome/`, { headers: { cookie: `bench_gateway_session=${encodeURIComponent(cookies[i])}` }, expect: 200 })
      if (!res.text.includes('bench0')) throw new Error('cloned session not signed in')
    }
  })
  const rss1 = rssOf(proc.pid)
  const after = JSON.parse((await http(`${url}/__bench/stats`, { expect: 200 })).text)
  await stop(proc)
  const fileBytes = [db, db + '-wal'].filter(existsSync).reduce((a, f) => a + statSync(f).size, 0)
  results.scenarios[variant === 'default' ? 'memory' : `memory-${variant}`] = {
    env: extraEnv,
    warmLogins: C.warmLogins,
    warmConcurrency: WARM_LOGIN_CONCURRENCY,
    warmSeconds: round(warmSeconds, 1),
    warmRetries,
    sessions: after.sessions,
    touched: touched.ops,
    touchRate: round(touched.rate),
    rssBeforeMB: round(rss0 / 2 ** 20, 1),
    rssMB: round(rss1 / 2 ** 20, 1),
    heapUsedMB: round(after.heapUsed / 2 ** 20, 1),
    heapBeforeMB: round(before.heapUsed / 2 ** 20, 1),
    rssBytesPerSession: round((rss1 - rss0) / C.sessions),
    diskBytesPerSession: round(fileBytes / C.sessions)
  }
  log(`memory (${variant}): ${after.sessions} sessions, RSS ${round(rss0 / 2 ** 20, 1)} -> ${round(rss1 / 2 ** 20, 1)} MB`)
}

/** PostgreSQL: a fresh database on the server at BENCH_DATABASE_URL (dropped at the end). */
async function pgDatabase () {
  // pg as the gateway package has it (the bench adds no driver of its own).
  let pg
  try {
    pg = createRequire(import.meta.resolve('fastify-sso-gateway'))('pg')
  } catch {
    throw new Error('BENCH_DATABASE_URL given, but fastify-sso-gateway has no pg dependency (no PostgreSQL store yet)')
  }
  const name = 'sso_bench_' + randomBytes(6).toString('hex')
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const u = new URL(PG_URL)
  u.pathname = '/' + name
  // Asks pg_stat_activity which backends serve the bench's database (their CPU is measured).
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  return {
    url: u.href,
    name,
    client,
    drop: async () => {
      await client.end()
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    }
  }
}

async function postgresRows () {
  const gw = await import('fastify-sso-gateway')
  if (gw.PostgresGatewayStore === undefined) {
    results.scenarios.postgres = { pending: 'this fastify-sso-gateway has no PostgresGatewayStore yet' }
    log('PostgreSQL rows pending: no PostgresGatewayStore in this build')
    return
  }
  for (const instances of [1, 2]) {
    const db = await pgDatabase()
    const fleet = await startFleet({ label: `pg${instances}`, env: { DATABASE_URL: db.url }, instances })
    fleet.pg = db
    try {
      if (instances === 1) {
        await protocolEndpoints(fleet, 'protocol-pg')
        await silentHop(fleet, 'silentHop-pg')
      }
      await fanOut(fleet, `fanOut-pg${instances}`)
    } finally {
      await stopFleet(fleet)
      await db.drop()
    }
  }
}

// ---------------------------------------------------------------- report
const pct = (x) => (x === null || x === undefined ? '–' : `${round(x * 100, x < 0.1 ? 2 : 1)}%`)
const yes = (ok) => (ok ? '**yes**' : '**no**')
const ms = (x, d = 3) => (x === null || x === undefined ? '–' : `${round(x, d)} ms`)
const cores = (c) => (c === undefined ? '' : Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', '))
/** "0.061 ms (gateway 0.98 cores)": the server CPU per op and how busy each server was. */
const srv = (r, d = 4) => `${ms(r.serverMsPerOp, d)} (${cores(r.serverCores)})`
const cli = (r) => `${ms(r.clientMsPerOp, 4)} (${r.clientCores} cores)`
const bg = (r) => `${r.errors > 0 ? `${r.errors} failed (${r.firstError === undefined ? 'non-2xx' : String(r.firstError).slice(0, 60)}); ` : ''}${r.others ?? '–'} cores; load ${r.loadAverage ?? '–'}${r.drain ? `; drain ${r.drain.ms} ms${r.drain.drained ? '' : ` NOT DRAINED (${r.drain.pending} left)`}` : ''}`
const failedRow = (name, s) => [name, `FAILED: ${String(s.failed).slice(0, 200)}`, '–', '–', '–', '–', '–', '**no** (no result)', '–']

function table (s = results.scenarios) {
  const rows = [['row', 'throughput', 'throughput ratio', 'server CPU per op (busy cores)', 'server-CPU ratio', 'client CPU per op (cores)', 'target', 'holds', 'others\' CPU; load avg; drain']]
  const protocol = (p, tag) => {
    if (p === undefined) return
    if (p.failed !== undefined) return rows.push(failedRow(`protocol${tag}`, p))
    const c = p.ceiling
    if (tag === '') {
      rows.push(['1. ceiling: bare Fastify GET (JSON)', `${c.rate} req/s, p50 ${c.p50} / p99 ${c.p99} ms`, '1', srv(c, 5), '1', cli(c), 'server saturated (≥ 0.85 core): the generator is not the limit', yes(c.serverCores.ceiling >= 0.85), bg(c)])
      const f = p.ceilingFormPost
      rows.push(['1. ceiling: form POST (JSON answer)', `${f.rate} req/s`, pct(f.ratio), srv(f, 5), pct(f.serverRatio), cli(f), 'server saturated (≥ 0.85 core)', yes(f.serverCores.ceiling >= 0.85), bg(f)])
    }
    const o = p.obtain
    rows.push([`2. POST /sso/obtain/${tag}`, `${o.rate} req/s, p50 ${o.p50} / p99 ${o.p99} ms`, pct(o.ratio), srv(o), pct(o.serverRatio), cli(o), 'server CPU ≥ 30% of the ceiling (stretch 40%)', yes(o.serverRatio >= 0.3) + (o.serverRatio >= 0.4 ? ' (stretch too)' : ''), bg(o)])
    const g = p.getMakeUsed
    rows.push([`2. POST /sso/get/ + /sso/make_used/${tag} (per request)`, `${g.rate} req/s, p50 ${g.p50} / p99 ${g.p99} ms${g.tokensRanOut ? '; tokens ran out' : ''}`, pct(g.ratio), srv(g), pct(g.serverRatio), cli(g), 'server CPU ≥ 30% of the ceiling (stretch 40%)', yes(g.serverRatio >= 0.3) + (g.serverRatio >= 0.4 ? ' (stretch too)' : ''), bg(g)])
  }
  const hopRow = (h, tag) => {
    if (h === undefined) return
    if (h.failed !== undefined) return rows.push(failedRow(`silent hop${tag}`, h))
    const r = h.hops
    rows.push([`3. silent SSO hop${tag}, whole (${h.browsers} browsers)`, `${r.rate} hops/s, p50 ${r.p50} / p99 ${r.p99} ms`, pct(r.ratio), srv(r, 3), pct(r.serverRatio), cli(r), 'server CPU ≥ 2% of the ceiling (stretch 3%)', yes(r.serverRatio >= 0.02) + (r.serverRatio >= 0.03 ? ' (stretch too)' : ''), bg(r)])
  }
  protocol(s.protocol, '')
  hopRow(s.silentHop, '')
  if (s.passwordLogin !== undefined) {
    const p = s.passwordLogin
    if (p.failed !== undefined) rows.push(failedRow('4. password sign-in', p))
    else {
      const l = p.logins
      rows.push(['4. password sign-in, full chain', `${l.rate} logins/s, p50 ${l.p50} / p99 ${l.p99} ms (raw argon2id ${p.rawHash.rate}/s: ${pct(p.ratio)})`, '–', srv(l, 2), '–', cli(l), `non-hash server CPU ≤ 6 ms (argon2 ${p.rawHash.cpuMsPerVerify} ms per verify taken off)`, `${yes(p.nonHashServerMs <= 6)} (${p.nonHashServerMs} ms)`, bg(l)])
      rows.push(['4. event-loop delay during the storm', `gateway p99 ${p.eventLoopDelay.p99} ms (max ${p.eventLoopDelay.max}); another route p99 ${p.otherRoute.p99} ms`, '–', '–', '–', '–', '< 20 ms p99', yes(p.eventLoopDelay.p99 < 20), '–'])
    }
  }
  if (s.sessionStore !== undefined) {
    const st = s.sessionStore
    if (st.failed !== undefined) rows.push(failedRow('session store', st))
    else {
      rows.push(['new session per request: in-memory store', `${st.memory.rate} req/s`, pct(st.memory.ratio), srv(st.memory), pct(st.memory.serverRatio), cli(st.memory), 'reference of the next row', '–', bg(st.memory)])
      rows.push(['new session per request: SQLite store', `${st.sqlite.rate} req/s (${st.sqliteToMemory}× the in-memory store)`, pct(st.sqlite.ratio), srv(st.sqlite), `${pct(st.sqlite.serverRatio)}; ${st.sqliteToMemoryServer}× the in-memory store`, cli(st.sqlite), '≥ 0.7× the in-memory store (server CPU)', yes(st.sqliteToMemoryServer >= 0.7), bg(st.sqlite)])
      rows.push(['new session per request: whole service plugin', `${st.plugin.rate} req/s`, pct(st.plugin.ratio), srv(st.plugin), pct(st.plugin.serverRatio), cli(st.plugin), 'none (what the plugin adds)', '–', bg(st.plugin)])
    }
  }
  const fan = (f, tag) => {
    if (f === undefined) return
    if (f.failed !== undefined) return rows.push(failedRow(`fan-out${tag}`, f))
    if (tag === '') rows.push([`5. logout fan-out to ${f.services} services`, `all ended in ${f.rounds.map((r) => r.allMs).join(' / ')} ms (${f.rounds.length} rounds)`, '–', '–', '–', '–', '< 1 s', yes(f.allMs < 1000), '–'])
    rows.push([`5. ${f.drain.events} queued events drained${tag}`, `${f.drain.perSecond} events/s (${f.drain.ms} ms)${f.drain.drained ? '' : ' NOT DRAINED'}`, '–', ms(f.drain.serverMsPerEvent, 4) + ' per event', '–', '–', tag === '' ? 'none (SQLite reference)' : '2 processes ≥ 1.3× one', '–', '–'])
  }
  fan(s.fanOut, '')
  if (s.logoutScale !== undefined) {
    const l = s.logoutScale
    if (l.failed !== undefined) rows.push(failedRow('6. logout scale', l))
    else {
      for (const r of l.rows) {
        rows.push([`6. end one user's sessions, ${r.others.toLocaleString('en')} stored`, `destroyByUser p50 ${r.destroyByUserMs.p50} ms; signed event over HTTP p50 ${r.eventMs.p50} ms; full scan ${r.fullScanMs} ms`, '–', '–', '–', '–', 'see the next row', '–', '–'])
      }
      rows.push(['6. largest vs smallest', `destroyByUser ${l.destroyRatio}×; signed event over HTTP ${l.eventRatio}×`, '–', '–', '–', '–', '≤ 2× (destroyByUser)', yes(l.destroyRatio <= 2), '–'])
    }
  }
  for (const [k, label] of [['memory', 'default settings'], ['memory-mmap-threshold', 'MALLOC_MMAP_THRESHOLD_=131072']]) {
    const m = s[k]
    if (m === undefined) continue
    if (m.failed !== undefined) { rows.push(failedRow(`7. memory ${label}`, m)); continue }
    rows.push([`7. gateway memory, ${label}: ${m.warmLogins} sign-ins (${m.warmConcurrency} at once), then ${m.sessions.toLocaleString('en')} live sessions (${m.touched.toLocaleString('en')} used)`,
      `RSS ${m.rssMB} MB (${m.rssBeforeMB} MB after the warm-up${m.warmRetries > 0 ? `, ${m.warmRetries} sign-ins retried` : ''}); heap ${m.heapUsedMB} MB; ${m.rssBytesPerSession} B RSS + ${m.diskBytesPerSession} B on disk per session`, '–', '–', '–', '–', '≤ 150 MB', yes(m.rssMB <= 150), '–'])
  }
  // PostgreSQL variants.
  if (s.postgres?.pending !== undefined) rows.push(['PostgreSQL variants', `pending: ${s.postgres.pending}`, '–', '–', '–', '–', 'PG hop ≥ 0.7× SQLite; 2 processes drain ≥ 1.3× one', '– (pending)', '–'])
  protocol(s['protocol-pg'], ' (PostgreSQL)')
  hopRow(s['silentHop-pg'], ' (PostgreSQL)')
  if (s['silentHop-pg']?.hops !== undefined && s.silentHop?.hops !== undefined) {
    const r = s['silentHop-pg'].hops.serverRatio / s.silentHop.hops.serverRatio
    rows.push(['3. hop, PostgreSQL vs SQLite (server CPU)', `${round(s['silentHop-pg'].hops.rate)} vs ${round(s.silentHop.hops.rate)} hops/s`, '–', '–', `${round(r, 2)}×`, '–', 'PG ≥ 0.7× SQLite', yes(r >= 0.7), '–'])
  }
  fan(s['fanOut-pg1'], ' (PostgreSQL, 1 gateway process)')
  fan(s['fanOut-pg2'], ' (PostgreSQL, 2 gateway processes)')
  if (s['fanOut-pg1']?.drain !== undefined && s['fanOut-pg2']?.drain !== undefined) {
    const r = s['fanOut-pg2'].drain.perSecond / s['fanOut-pg1'].drain.perSecond
    rows.push(['5. drain, 2 gateway processes vs 1 (PostgreSQL)', `${s['fanOut-pg2'].drain.perSecond} vs ${s['fanOut-pg1'].drain.perSecond} events/s`, `${round(r, 2)}×`, '–', '–', '–', '≥ 1.3×', yes(r >= 1.3), '–'])
  }
  return rows
}

function markdown (rows) {
  const esc = (c) => String(c).replace(/\|/g, '\\|')
  return [rows[0], rows[0].map(() => '---'), ...rows.slice(1)].map((r) => `| ${r.map(esc).join(' | ')} |`).join('\n')
}

function printTable (rows) {
  const plain = rows.map((r) => r.map((c) => String(c).replace(/\*\*/g, '')))
  const widths = plain[0].map((_, i) => Math.min(48, Math.max(...plain.map((r) => r[i].length))))
  const line = (r) => r.map((c, i) => c.slice(0, 48).padEnd(widths[i])).join(' │ ')
  console.log(line(plain[0]))
  console.log(widths.map((w) => '─'.repeat(w)).join('─┼─'))
  for (const r of plain.slice(1)) console.log(line(r))
}

/**
 * The PostgreSQL rows, from bench/results/postgres.json when there is one (a run with
 * BENCH_DATABASE_URL, e.g. `--only=protocol,hop,fanout,postgres`, copied there): its own SQLite
 * rows are shown with it, so its ratios to SQLite come from one run.
 */
function postgresSection () {
  const file = join(HERE, 'results', 'postgres.json')
  if (!existsSync(file)) return ''
  const pg = JSON.parse(readFileSync(file, 'utf8'))
  return `
## PostgreSQL (\`BENCH_DATABASE_URL\`)

From a separate run on ${pg.date.slice(0, 16).replace('T', ' ')} UTC (load average ${pg.machine.loadAverageAtStart} at its start), with
its own SQLite rows for the comparison. A fresh database on the local PostgreSQL 15; one or two gateway
processes on it; the server CPU includes the PostgreSQL backends serving that database (from
\`pg_stat_activity\` and \`/proc\`).

${markdown(table(pg.scenarios))}
`
}

function writeReport () {
  const rows = table()
  printTable(rows)
  const m = results.machine
  const notes = readFileSync(join(HERE, 'ANALYSIS.md'), 'utf8')
  writeFileSync(join(ROOT, 'BENCHMARKS.md'), `# Benchmarks

Written by \`pnpm bench\` (bench/run.mjs) on ${results.date.slice(0, 10)}: ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node};
load average ${m.loadAverageAtStart} at the start (a shared machine: see "The machine this ran on"). The whole run took ${results.seconds} s.
Load generator: ${results.generator}. Servers log at \`info\` (production), to files.
**Server-CPU ratio** = the bare route's server CPU per request ÷ ours, from \`/proc/<pid>/stat\` of our
server processes only (gateway, services, or the session store's server), over the load window *and*
the outbox drain after it; the load generator's CPU is the "client" column, never counted. The
throughput ratio depends on how the 2 cores are shared between client and servers; the server-CPU
ratio does not, and is what the targets are checked on. Raw figures: bench/results/full.json (not committed).

${markdown(rows)}
${postgresSection()}
${notes}`)
  console.log('BENCHMARKS.md written')
}

// ---------------------------------------------------------------- main
if (argv.includes('--report')) {
  // Rewrites BENCHMARKS.md from the last full run's JSON (after editing bench/ANALYSIS.md).
  Object.assign(results, JSON.parse(readFileSync(join(HERE, 'results', 'full.json'), 'utf8')))
  writeReport()
  rmSync(dataDir, { recursive: true, force: true })
  process.exit(0)
}
const t0 = performance.now()
let failed = 0
/** A scenario that fails is recorded as failed and the run goes on: no crash without a result. */
async function scenario (name, key, fn) {
  if (!wanted(name)) return
  try {
    await fn()
  } catch (err) {
    failed++
    log(`${name} FAILED: ${err?.stack ?? err}`)
    for (const p of [main?.gateway, main?.services]) if (p !== undefined) log(`${p.benchName} log tail:\n${logTail(p, 1500)}`)
    results.scenarios[key] = { ...(results.scenarios[key] ?? {}), failed: String(err?.message ?? err) }
  }
}
try {
  ceilingProc = await start('ceiling', join(HERE, 'servers/ceiling.mjs'), { env: { PORT: String(ceilingPort) }, readyUrl: `http://127.0.0.1:${ceilingPort}/` })
  main = await startFleet()
  await ceiling('warm-up')
  await scenario('protocol', 'protocol', () => protocolEndpoints(main))
  await scenario('hop', 'silentHop', () => silentHop(main))
  await scenario('login', 'passwordLogin', () => passwordLogin(main))
  await scenario('fanout', 'fanOut', () => fanOut(main))
  await stopFleet(main)
  await scenario('store', 'sessionStore', () => sessionStores())
  await scenario('scale', 'logoutScale', () => logoutScale())
  await scenario('memory', 'memory', () => memory())
  // glibc keeps each argon2 thread's 19 MiB in its arena unless mmap's threshold is fixed: the same load.
  if (!QUICK) await scenario('memory', 'memory-mmap-threshold', () => memory('mmap-threshold', { MALLOC_MMAP_THRESHOLD_: '131072' }))
  if (PG_URL !== undefined) await scenario('postgres', 'postgres', () => postgresRows())
  else if (!QUICK && ONLY === undefined) results.scenarios.postgres = { pending: 'run with BENCH_DATABASE_URL=postgres://… to add them' }
} catch (err) {
  failed++
  console.error(err)
} finally {
  await closePools()
  await stopAll()
}
rmSync(dataDir, { recursive: true, force: true })
results.seconds = round((performance.now() - t0) / 1000, 1)
results.failedScenarios = failed
mkdirSync(join(HERE, 'results'), { recursive: true })
const jsonFile = join(HERE, 'results', `${mode}.json`)
writeFileSync(jsonFile, JSON.stringify(results, null, 2) + '\n')
if (mode === 'full') writeReport()
else printTable(table())
console.log(`\n${mode} run: ${results.seconds} s; JSON in ${jsonFile}${failed > 0 ? `; ${failed} scenario(s) FAILED` : ''}`)
if (failed > 0) process.exitCode = 1
