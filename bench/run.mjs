// `pnpm bench [--quick] [--profile]`: real processes on loopback, load from this process,
// every figure next to a ceiling (a bare Fastify route) measured in the same run.
// Writes bench/results/<full|quick>.json; a full run also writes BENCHMARKS.md at the root.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { signWebhook } from 'fastify-sso-protocol'
import { closedLoop, summarize } from './lib/load.mjs'
import { Browser, closePools, csrfOf, form, FORM, http } from './lib/http.mjs'
import { busy, freePort, rssOf, runJson, start, stop, stopAll, waitQuiet } from './lib/procs.mjs'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = join(HERE, '..')
const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const PROFILE = argv.includes('--profile')
const ONLY = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',')
const mode = ONLY !== undefined ? 'partial' : PROFILE ? 'profile' : QUICK ? 'quick' : 'full'
const wanted = (name) => ONLY === undefined ? (!PROFILE || ['protocol', 'hop'].includes(name)) : ONLY.includes(name)

/** Every load is bounded in time (ms) and count. */
const C = QUICK
  ? { ceilingMs: 1000, loadMs: 1500, tokens: 400, hopMs: 1500, loginMs: 2000, hashMs: 1500, fanoutRounds: 1, drain: 1000, scale: [1_000, 10_000, 100_000], sessions: 10_000, touch: 2_000, storeMs: 1000 }
  : { ceilingMs: 4000, loadMs: 6000, tokens: 8000, hopMs: 8000, loginMs: 8000, hashMs: 4000, fanoutRounds: 3, drain: 10_000, scale: [1_000, 100_000, 1_000_000], sessions: 100_000, touch: 50_000, storeMs: 4000 }
const MAX_OPS = 2_000_000
const CONCURRENCY = 32
const HOP_BROWSERS = 64
const LOGIN_CONCURRENCY = 16
const SERVICES = 20
const USERS = 200
const PASSWORD = 'correct horse battery staple'

const dataDir = join(HERE, 'results', `data-${process.pid}`)
const profDir = join(HERE, 'results', 'profiles')
mkdirSync(dataDir, { recursive: true })
const secret = () => randomBytes(32).toString('base64url')
const log = (...a) => console.error(`[bench ${((performance.now()) / 1000).toFixed(1)}s]`, ...a)
const round = (n, d = 0) => (n === null || n === undefined ? null : Math.round(n * 10 ** d) / 10 ** d)

const results = {
  mode,
  date: new Date().toISOString(),
  machine: {
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1)
  },
  config: { ...C, concurrency: CONCURRENCY, hopBrowsers: HOP_BROWSERS, loginConcurrency: LOGIN_CONCURRENCY, services: SERVICES },
  scenarios: {}
}

// ---------------------------------------------------------------- processes
const ceilingPort = await freePort()
const gatewayPort = await freePort()
const G = `http://127.0.0.1:${gatewayPort}`
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

let ceilingProc, gatewayProc, servicesProc
async function startMain () {
  ceilingProc = await start('ceiling', join(HERE, 'servers/ceiling.mjs'), { env: { PORT: String(ceilingPort) }, readyUrl: `http://127.0.0.1:${ceilingPort}/` })
  gatewayProc = await start('gateway', join(HERE, 'servers/gateway.mjs'), {
    nodeArgs: profArgs('gateway'),
    env: {
      PORT: String(gatewayPort),
      DATABASE: join(dataDir, 'gateway.sqlite'),
      SESSION_SECRET: gatewaySessionSecret,
      SERVICES: JSON.stringify(services.map((s) => ({ name: s.name, baseUrl: s.url, eventUrl: `${s.url}/sso/event/`, secret: s.token, signingSecret: s.signingSecret }))),
      USERS: String(USERS),
      PASSWORD,
      BENCH_DEBUG: '1'
    },
    readyUrl: `${G}/__bench/ping`
  })
  servicesProc = await start('services', join(HERE, 'servers/services.mjs'), {
    nodeArgs: profArgs('services'),
    env: { GATEWAY_URL: G, SERVICES: JSON.stringify(services) },
    readyUrl: `${services[SERVICES - 1].url}/__bench/events`
  })
}

// ---------------------------------------------------------------- helpers
/** Runs a load and records how busy each process was (CPU seconds per second). */
async function measured (fn, extra = {}) {
  const procs = { bench: 'self', ...extra }
  for (const [k, p] of [['ceiling', ceilingProc], ['gateway', gatewayProc], ['services', servicesProc]]) {
    if (p !== undefined && p.exitCode === null) procs[k] = p
  }
  // A shared machine: wait (bounded) for other people's builds and tests to calm down.
  if (!QUICK) await waitQuiet(Object.values(procs), { maxMs: 5000 })
  const { result, cpu } = await busy(procs, fn)
  result.cpu = cpu
  return result
}
async function ceiling (label) {
  const r = await measured(() => closedLoop({
    concurrency: CONCURRENCY, durationMs: C.ceilingMs, maxOps: MAX_OPS, warmupMs: 300,
    op: async () => { await http(`http://127.0.0.1:${ceilingPort}/`, { expect: 200 }) }
  }))
  log(`ceiling (${label}): ${round(r.rate)} req/s; cpu ${JSON.stringify(r.cpu)}`)
  return r
}

const svcBody = (s, fields) => form({ token: s.token, ...fields })

/** Waits until the gateway's outbox has delivered the background events earlier steps queued. */
async function settle () {
  await http(`${G}/__bench/settle`, { method: 'POST', expect: 200 })
}

async function obtain (s = S0, next = '/private') {
  const res = await http(`${G}/sso/obtain/`, { method: 'POST', headers: FORM, body: svcBody(s, { next_url: next }), expect: 200 })
  return JSON.parse(res.text).token
}

/** A password sign-in at the gateway alone (no service). */
async function gatewayLogin (browser, username) {
  const page = await browser.request(`${G}/login/`, { expect: 200 })
  await browser.request(`${G}/login/`, { method: 'POST', headers: FORM, body: form({ _csrf: csrfOf(page.text), username, password: PASSWORD }), expect: 303 })
}

/** The whole sign-in into service `s` through the gateway, with a password (fresh browser). */
async function fullLogin (browser, s, username) {
  const r1 = await browser.request(`${s.url}/login/?next=/private`, { expect: 302 })
  const gw = Browser.next(r1, s.url)
  const page = await browser.request(gw, { expect: 200 })
  const r3 = await browser.request(gw, { method: 'POST', headers: FORM, body: form({ _csrf: csrfOf(page.text), username, password: PASSWORD }), expect: 303 })
  const accept = Browser.next(r3, gw)
  const r4 = await browser.request(accept, { expect: 302 })
  if (r4.headers.location !== '/private') throw new Error(`accept sent the browser to ${r4.headers.location}`)
}

/** Silent SSO hop into service `s` for a browser signed in at the gateway. */
async function hop (browser, s) {
  browser.forget(s.url)
  const r1 = await browser.request(`${s.url}/login/?next=/private`, { expect: 302 })
  const gw = Browser.next(r1, s.url)
  const r2 = await browser.request(gw, { expect: 302 })
  const accept = Browser.next(r2, gw)
  const r3 = await browser.request(accept, { expect: 302 })
  if (r3.headers.location !== '/private') throw new Error(`accept sent the browser to ${r3.headers.location}: ${r3.text.slice(0, 200)}`)
}

async function pmap (items, concurrency, fn) {
  let next = 0
  const out = new Array(items.length)
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async (_, worker) => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i], i, worker)
    }
  }))
  return out
}

const gwStats = async (reset = false) => JSON.parse((await http(`${G}/__bench/stats${reset ? '?reset=1' : ''}`, { expect: 200 })).text)
const rate = (r) => round(r.rate)
const lat = (r) => ({ p50: round(r.latency.p50, 2), p99: round(r.latency.p99, 2) })

// ---------------------------------------------------------------- scenarios
async function protocolEndpoints () {
  const ceil = await ceiling('protocol')
  const ceilForm = await measured(() => closedLoop({
    concurrency: CONCURRENCY, durationMs: C.ceilingMs, maxOps: MAX_OPS, warmupMs: 300,
    op: async () => { await http(`http://127.0.0.1:${ceilingPort}/form`, { method: 'POST', headers: FORM, body: svcBody(S0, { next_url: '/private' }), expect: 200 }) }
  }))
  const body = svcBody(S0, { next_url: '/private' })
  const ob = await measured(() => closedLoop({
    concurrency: CONCURRENCY, durationMs: C.loadMs, maxOps: MAX_OPS, warmupMs: 500,
    op: async () => { await http(`${G}/sso/obtain/`, { method: 'POST', headers: FORM, body, expect: 200 }) }
  }))
  log(`obtain: ${rate(ob)} req/s (${round(ob.rate / ceil.rate * 100, 1)}% of the ceiling)`)

  // Authenticated tokens: obtained by the service, authenticated silently by a signed-in browser.
  // One signed-in browser (its own user) per worker: a user's events are delivered in order,
  // so one user signing in 32 times at once would queue behind itself.
  const browsers = Array.from({ length: CONCURRENCY }, () => new Browser())
  await pmap(browsers, 8, async (b, i) => gatewayLogin(b, `bench${150 + i}`))
  const t0 = performance.now()
  const tokens = await pmap(Array.from({ length: C.tokens }), CONCURRENCY, async (_t, _i, worker) => {
    const t = await obtain()
    const res = await browsers[worker].request(`${G}/login/?sso=${encodeURIComponent(t)}`, { expect: 302 })
    // The one-time code the gateway gives the browser: a service's accept route passes it on.
    const code = new URL(String(res.headers.location)).searchParams.get('code')
    return { t, code }
  })
  const prepSeconds = (performance.now() - t0) / 1000
  log(`prepared ${tokens.length} authenticated tokens in ${round(prepSeconds, 1)} s`)
  await settle()
  const getLat = []
  const usedLat = []
  const pairs = await measured(() => closedLoop({
    concurrency: CONCURRENCY, durationMs: C.loadMs, maxOps: tokens.length,
    op: async (_w, i) => {
      const b = svcBody(S0, { authentication_token: tokens[i].t, code: tokens[i].code })
      const a = performance.now()
      const got = await http(`${G}/sso/get/`, { method: 'POST', headers: FORM, body: b, expect: 200 })
      const m = performance.now()
      if (!got.text.includes('"authenticated":true')) throw new Error('get: not authenticated')
      await http(`${G}/sso/make_used/`, { method: 'POST', headers: FORM, body: b, expect: 200 })
      getLat.push(m - a)
      usedLat.push(performance.now() - m)
    }
  }))
  const reqRate = pairs.rate * 2
  log(`get+make_used: ${round(reqRate)} req/s (${round(reqRate / ceil.rate * 100, 1)}% of the ceiling); cpu ${JSON.stringify(pairs.cpu)}`)
  results.scenarios.protocol = {
    ceiling: { rate: rate(ceil), ...lat(ceil), cpu: ceil.cpu },
    ceilingFormPost: { rate: rate(ceilForm), ...lat(ceilForm) },
    obtain: { rate: rate(ob), ...lat(ob), ratio: round(ob.rate / ceil.rate, 3), ops: ob.ops, errors: ob.errors, cpu: ob.cpu },
    getMakeUsed: {
      rate: round(reqRate), pairsPerSecond: rate(pairs), ratio: round(reqRate / ceil.rate, 3), ops: pairs.ops * 2, errors: pairs.errors, cpu: pairs.cpu,
      get: { p50: round(summarize(getLat).p50, 2), p99: round(summarize(getLat).p99, 2) },
      makeUsed: { p50: round(summarize(usedLat).p50, 2), p99: round(summarize(usedLat).p99, 2) },
      tokensPrepared: tokens.length, tokenPrepSeconds: round(prepSeconds, 1), limitedByTokens: pairs.totalOps >= tokens.length
    }
  }
}

async function silentHop () {
  const browsers = Array.from({ length: HOP_BROWSERS }, () => new Browser())
  await pmap(browsers, 8, async (b, i) => gatewayLogin(b, `bench${10 + i}`))
  await pmap(browsers, 8, async (b) => hop(b, S0)) // warm-up: one hop each
  await settle()
  const ceil = await ceiling('hop')
  const r = await measured(() => closedLoop({
    concurrency: HOP_BROWSERS, durationMs: C.hopMs, maxOps: MAX_OPS, warmupMs: 500,
    op: async (w) => hop(browsers[w], S0)
  }))
  log(`silent hop: ${rate(r)} hops/s (${round(r.rate / ceil.rate * 100, 2)}% of the ceiling); cpu ${JSON.stringify(r.cpu)}`)
  await settle() // each hop queued an update_account, delivered in the background
  results.scenarios.silentHop = {
    ceiling: { rate: rate(ceil) }, browsers: HOP_BROWSERS,
    hops: { rate: rate(r), ...lat(r), ratio: round(r.rate / ceil.rate, 4), ops: r.ops, errors: r.errors, cpu: r.cpu }
  }
}

async function passwordLogin () {
  let n = 0
  await fullLogin(new Browser(), S0, 'bench2') // warm-up
  await gwStats(true)
  const pings = []
  let storming = true
  const poller = (async () => {
    while (storming) {
      const a = performance.now()
      await http(`${G}/__bench/ping`, { expect: 200 })
      pings.push(performance.now() - a)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  const r = await measured(() => closedLoop({
    concurrency: LOGIN_CONCURRENCY, durationMs: C.loginMs, maxOps: MAX_OPS, warmupMs: 1000,
    op: async () => fullLogin(new Browser(), S0, `bench${100 + (n++ % 100)}`)
  }))
  storming = false
  await poller
  const stats = await gwStats(true)
  log(`password logins: ${rate(r)} /s; event loop p99 ${stats.eventLoopDelay.p99} ms; cpu ${JSON.stringify(r.cpu)}`)
  // The machine's raw rate: as many hashes at once as it has cores, and as libuv's default 4.
  const hashes = []
  for (const threads of [results.machine.cores, 4]) {
    if (!QUICK) await waitQuiet([gatewayProc, servicesProc, ceilingProc, 'self'], { maxMs: 5000 })
    hashes.push(await runJson(join(HERE, 'servers/hash.mjs'), { env: { DURATION: String(C.hashMs), UV_THREADPOOL_SIZE: String(threads) } }))
  }
  const hash = hashes.reduce((a, b) => (b.rate > a.rate ? b : a))
  log(`raw argon2id verify: ${round(hash.rate, 1)} /s`)
  const ping = summarize(pings)
  results.scenarios.passwordLogin = {
    logins: { rate: round(r.rate, 1), ...lat(r), ops: r.ops, errors: r.errors, concurrency: LOGIN_CONCURRENCY, cpu: r.cpu },
    rawHash: { rate: round(hash.rate, 1), p50: round(hash.p50, 1), concurrency: hash.concurrency, params: hash.params, byThreads: hashes.map((h) => ({ threads: h.concurrency, rate: round(h.rate, 1) })) },
    ratio: round(r.rate / hash.rate, 3),
    eventLoopDelay: stats.eventLoopDelay,
    otherRoute: { count: ping.count, p50: round(ping.p50, 2), p99: round(ping.p99, 2), max: round(ping.max, 2) }
  }
}

async function fanOut () {
  const rounds = []
  for (let k = 0; k < C.fanoutRounds; k++) {
    const username = `bench${USERS - 1 - k}`
    const b = new Browser()
    await gatewayLogin(b, username)
    for (const s of services) await hop(b, s)
    await settle()
    await Promise.all(services.map((s) => http(`${s.url}/__bench/events?reset=1`, { expect: 200 })))
    const page = await b.request(`${G}/logout/`, { expect: 200 })
    const csrf = csrfOf(page.text)
    const t0 = performance.timeOrigin + performance.now()
    await b.request(`${G}/logout/`, { method: 'POST', headers: FORM, body: form({ _csrf: csrf }), expect: 200 })
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
  const d = JSON.parse((await http(`${G}/__bench/drain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: C.drain }), expect: 200 })).text)
  const counts = await Promise.all(services.map(async (s) => JSON.parse((await http(`${s.url}/__bench/events`, { expect: 200 })).text).deauthenticated))
  const received = counts.reduce((a, b) => a + b, 0)
  const pending = d.status.reduce((a, s) => a + s.pending + s.dead, 0)
  log(`drained ${C.drain} events in ${round(d.drainMs)} ms (${round(C.drain / d.drainMs * 1000)}/s); services applied ${received}`)
  if (received < C.drain || pending > 0) throw new Error(`drain: services applied ${received} of ${C.drain}, ${pending} left`)
  results.scenarios.fanOut = {
    services: SERVICES,
    rounds,
    allMs: Math.max(...rounds.map((r) => r.allMs)),
    drain: { events: C.drain, ms: round(d.drainMs), perSecond: round(C.drain / d.drainMs * 1000), enqueueMs: round(d.enqueueMs, 1), applied: received }
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
    const r = await measured(() => closedLoop({
      concurrency: CONCURRENCY, durationMs: C.storeMs, maxOps: MAX_OPS, warmupMs: 300,
      op: async () => {
        const res = await http(`http://127.0.0.1:${port}/new`, { expect: 200 })
        if (res.headers['set-cookie'] === undefined) throw new Error('no session cookie')
      }
    }))
    await stop(proc)
    out[store] = { rate: rate(r), ...lat(r), ratioToCeiling: round(r.rate / ceil.rate, 3), cpu: r.cpu }
    log(`new session per request, ${store}: ${rate(r)} req/s`)
  }
  results.scenarios.sessionStore = { ceiling: { rate: rate(ceil) }, ...out, sqliteToMemory: round(out.sqlite.rate / out.memory.rate, 3) }
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
      env: { GATEWAY_URL: G, SERVICES: JSON.stringify([s]) }, readyUrl: `${s.url}/__bench/events`
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

async function memory (variant = 'default', extraEnv = {}, touch = C.touch) {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const db = join(dataDir, `memory-gateway-${variant}.sqlite`)
  const proc = await start('memory-gateway', join(HERE, 'servers/gateway.mjs'), {
    env: { PORT: String(port), DATABASE: db, SESSION_SECRET: gatewaySessionSecret, USERS: '1', PASSWORD, BENCH_DEBUG: '1', ...extraEnv },
    readyUrl: `${url}/__bench/ping`
  })
  const b = new Browser()
  const page = await b.request(`${url}/login/`, { expect: 200 })
  await b.request(`${url}/login/`, { method: 'POST', headers: FORM, body: form({ _csrf: csrfOf(page.text), username: 'bench0', password: PASSWORD }), expect: 303 })
  const cookie = b.cookieHeader(url)
  // Warm up every route used below, so the baseline has its code compiled and pools sized.
  await closedLoop({ concurrency: CONCURRENCY, durationMs: 3000, maxOps: 3000, op: async () => { await http(`${url}/welcome/`, { headers: { cookie }, expect: 200 }) } })
  const rss0 = rssOf(proc.pid)
  const before = JSON.parse((await http(`${url}/__bench/stats`, { expect: 200 })).text)
  const sid = decodeURIComponent(/bench_gateway_session=([^;]+)/.exec(cookie)[1]).split('.').slice(0, -1).join('.')
  const cookies = []
  for (let made = 0; made < C.sessions; made += 10_000) {
    const res = await http(`${url}/__bench/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: Math.min(10_000, C.sessions - made), sid }), expect: 200 })
    cookies.push(...JSON.parse(res.text).cookies)
  }
  const touched = await closedLoop({
    concurrency: CONCURRENCY, durationMs: 90_000, maxOps: Math.min(touch, cookies.length),
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
    sessions: after.sessions,
    touched: touched.ops,
    touchRate: rate(touched),
    rssBeforeMB: round(rss0 / 2 ** 20, 1),
    rssMB: round(rss1 / 2 ** 20, 1),
    heapUsedMB: round(after.heapUsed / 2 ** 20, 1),
    heapBeforeMB: round(before.heapUsed / 2 ** 20, 1),
    rssBytesPerSession: round((rss1 - rss0) / C.sessions),
    diskBytesPerSession: round(fileBytes / C.sessions)
  }
  log(`memory (${variant}): ${after.sessions} sessions, RSS ${round(rss0 / 2 ** 20, 1)} -> ${round(rss1 / 2 ** 20, 1)} MB`)
}

// ---------------------------------------------------------------- report
function table () {
  const s = results.scenarios
  const pct = (x) => (x === null || x === undefined ? '–' : `${round(x * 100, x < 0.1 ? 2 : 1)}%`)
  const yes = (ok) => (ok ? '**yes**' : '**no**')
  const rows = [['scenario', 'figure', 'same-run reference', 'ratio', 'target', 'holds', 'others\' CPU (cores)', 'our CPU per op (ceiling\'s / ours)']]
  const bg = (cpu) => (cpu?.others === undefined ? '–' : String(cpu.others))
  // CPU that our processes (servers and load generator) spent per operation, in ms: far less
  // sensitive to busy neighbours than throughput. Its ratio to the ceiling's is the share of
  // the ceiling's rate the operation would reach on an otherwise idle machine.
  const cpuMs = (cpu, perSecond) => {
    if (cpu === undefined || !(perSecond > 0)) return null
    const ours = Object.entries(cpu).filter(([k]) => k !== 'others').reduce((a, [, v]) => a + v, 0)
    return ours / perSecond * 1000
  }
  const ceilCpu = s.protocol === undefined ? null : cpuMs(s.protocol.ceiling.cpu, s.protocol.ceiling.rate)
  const cpuCol = (cpu, perSecond) => {
    const c = cpuMs(cpu, perSecond)
    if (c === null) return '–'
    return ceilCpu === null ? `${round(c, 3)} ms` : `${round(c, 3)} ms (${pct(ceilCpu / c)})`
  }
  const ceil = s.protocol?.ceiling
  if (ceil !== undefined) {
    rows.push(['1. ceiling: bare Fastify GET (JSON)', `${ceil.rate} req/s, p50 ${ceil.p50} / p99 ${ceil.p99} ms`, '–', '1', '–', '–', bg(ceil.cpu), cpuCol(ceil.cpu, ceil.rate)])
    rows.push(['1. ceiling: form POST (JSON answer)', `${s.protocol.ceilingFormPost.rate} req/s`, `${ceil.rate} req/s`, pct(s.protocol.ceilingFormPost.rate / ceil.rate), '–', '–'])
    const o = s.protocol.obtain
    rows.push(['2. POST /sso/obtain/', `${o.rate} req/s, p50 ${o.p50} / p99 ${o.p99} ms`, `ceiling ${ceil.rate} req/s`, pct(o.ratio), '≥ 35% (stretch 50%)', yes(o.ratio >= 0.35), bg(o.cpu), cpuCol(o.cpu, o.rate)])
    const g = s.protocol.getMakeUsed
    rows.push(['2. POST /sso/get/ + /sso/make_used/', `${g.rate} req/s (${g.pairsPerSecond} pairs/s); get p50 ${g.get.p50} / p99 ${g.get.p99} ms, make_used p50 ${g.makeUsed.p50} / p99 ${g.makeUsed.p99} ms`, `ceiling ${ceil.rate} req/s`, pct(g.ratio), '≥ 35% (stretch 50%)', yes(g.ratio >= 0.35), bg(g.cpu), cpuCol(g.cpu, g.rate)])
  }
  if (s.silentHop !== undefined) {
    const h = s.silentHop
    rows.push([`3. silent SSO hop (${h.browsers} browsers)`, `${h.hops.rate} hops/s, p50 ${h.hops.p50} / p99 ${h.hops.p99} ms`, `ceiling ${h.ceiling.rate} req/s`, pct(h.hops.ratio), '≥ 4% (stretch 6%)', yes(h.hops.ratio >= 0.04), bg(h.hops.cpu), cpuCol(h.hops.cpu, h.hops.rate)])
  }
  if (s.sessionStore !== undefined) {
    const st = s.sessionStore
    rows.push(['new session per request: SQLite store', `${st.sqlite.rate} req/s (${pct(st.sqlite.ratioToCeiling)} of ceiling)`, `in-memory store ${st.memory.rate} req/s (${pct(st.memory.ratioToCeiling)})`, `${st.sqliteToMemory}×`, '≥ 0.7×', yes(st.sqliteToMemory >= 0.7), `${bg(st.sqlite.cpu)} / ${bg(st.memory.cpu)}`, `${cpuCol(st.sqlite.cpu, st.sqlite.rate)} vs ${cpuCol(st.memory.cpu, st.memory.rate)}`])
    rows.push(['new session per request: whole service plugin', `${st.plugin.rate} req/s (${pct(st.plugin.ratioToCeiling)} of ceiling)`, `in-memory store ${st.memory.rate} req/s`, `${round(st.plugin.rate / st.memory.rate, 3)}×`, '–', '–', bg(st.plugin.cpu), cpuCol(st.plugin.cpu, st.plugin.rate)])
  }
  if (s.passwordLogin !== undefined) {
    const p = s.passwordLogin
    rows.push(['4. password sign-in, full chain', `${p.logins.rate} logins/s, p50 ${p.logins.p50} / p99 ${p.logins.p99} ms`, `raw argon2id verify ${p.rawHash.rate}/s`, pct(p.ratio), '≥ 90%', yes(p.ratio >= 0.9), bg(p.logins.cpu), cpuCol(p.logins.cpu, p.logins.rate)])
    rows.push(['4. event-loop delay during the storm', `p99 ${p.eventLoopDelay.p99} ms (max ${p.eventLoopDelay.max}); another route p99 ${p.otherRoute.p99} ms`, '–', '–', '< 20 ms p99', yes(p.eventLoopDelay.p99 < 20)])
  }
  if (s.fanOut !== undefined) {
    const f = s.fanOut
    rows.push([`5. logout fan-out to ${f.services} services`, `all ended in ${f.rounds.map((r) => r.allMs).join(' / ')} ms (${f.rounds.length} rounds)`, '–', '–', '< 1 s', yes(f.allMs < 1000)])
    rows.push([`5. ${f.drain.events} queued events drained`, `${f.drain.perSecond} events/s (${f.drain.ms} ms)`, ceil === undefined ? '–' : `ceiling ${ceil.rate} req/s`, ceil === undefined ? '–' : pct(f.drain.perSecond / ceil.rate), '–', '–'])
  }
  if (s.logoutScale !== undefined) {
    for (const r of s.logoutScale.rows) {
      rows.push([`6. end one user's sessions, ${r.others.toLocaleString('en')} stored`, `destroyByUser p50 ${r.destroyByUserMs.p50} ms; signed event over HTTP p50 ${r.eventMs.p50} ms`, `full scan ${r.fullScanMs} ms`, '–', '', ''])
    }
    const l = s.logoutScale
    rows.push([`6. largest vs smallest`, `destroyByUser ${l.destroyRatio}× (the target's figure); signed event over HTTP ${l.eventRatio}×`, '–', '–', '≤ 2×', yes(l.destroyRatio <= 2)])
  }
  if (s.memory !== undefined) {
    const m = s.memory
    rows.push([`7. gateway memory, ${m.sessions.toLocaleString('en')} live sessions (${m.touched.toLocaleString('en')} used)`, `RSS ${m.rssMB} MB (${m.rssBeforeMB} MB before); ${m.rssBytesPerSession} B RSS + ${m.diskBytesPerSession} B on disk per session`, '–', '–', '≤ 150 MB', yes(m.rssMB <= 150)])
    const v = s['memory-mmap-threshold']
    if (v !== undefined) rows.push([`7. same, MALLOC_MMAP_THRESHOLD_=131072 (${v.touched.toLocaleString('en')} used)`, `RSS ${v.rssMB} MB (${v.rssBeforeMB} MB before); ${v.rssBytesPerSession} B RSS per session`, '–', '–', '≤ 150 MB', yes(v.rssMB <= 150)])
  }
  return rows.map((r) => [...r, '–', '–'].slice(0, 8))
}

function markdown (rows) {
  const esc = (c) => String(c).replace(/\|/g, '\\|')
  return [rows[0], rows[0].map(() => '---'), ...rows.slice(1)].map((r) => `| ${r.map(esc).join(' | ')} |`).join('\n')
}

function printTable (rows) {
  const plain = rows.map((r) => r.map((c) => String(c).replace(/\*\*/g, '')))
  const widths = plain[0].map((_, i) => Math.min(70, Math.max(...plain.map((r) => r[i].length))))
  const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join(' │ ')
  console.log(line(plain[0]))
  console.log(widths.map((w) => '─'.repeat(w)).join('─┼─'))
  for (const r of plain.slice(1)) console.log(line(r))
}

function writeReport () {
  const rows = table()
  printTable(rows)
  const m = results.machine
  const notes = readFileSync(join(HERE, 'ANALYSIS.md'), 'utf8')
  writeFileSync(join(ROOT, 'BENCHMARKS.md'), `# Benchmarks

Written by \`pnpm bench\` (bench/run.mjs) on ${results.date.slice(0, 10)}: ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}.
Real processes on loopback with fresh SQLite files; load from the bench process (undici, closed loop,
${results.config.concurrency} connections unless noted); every ratio is against a reference measured in the same run.
The last column is the CPU that other people's processes took on this shared machine during each
measurement (of 2 cores): figures taken beside a busy neighbour are low. The whole run took ${results.seconds} s.
Raw figures: bench/results/full.json (not committed).

${markdown(rows)}

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
let failed = null
try {
  await startMain()
  await ceiling('warm-up')
  if (wanted('protocol')) await protocolEndpoints()
  if (wanted('hop')) await silentHop()
  if (wanted('login')) await passwordLogin()
  if (wanted('fanout')) await fanOut()
  if (wanted('store')) await sessionStores()
  if (wanted('scale')) await logoutScale()
  if (wanted('memory')) {
    await memory()
    // glibc keeps each argon2 thread's 19 MiB in its arena unless mmap's threshold is fixed.
    if (!QUICK) await memory('mmap-threshold', { MALLOC_MMAP_THRESHOLD_: '131072' }, Math.min(C.touch, 20_000))
  }
} catch (err) {
  failed = err
} finally {
  await closePools()
  await stopAll()
}
rmSync(dataDir, { recursive: true, force: true })
if (failed !== null) {
  console.error(failed)
  process.exitCode = 1
} else {
  results.seconds = round((performance.now() - t0) / 1000, 1)
  mkdirSync(join(HERE, 'results'), { recursive: true })
  const jsonFile = join(HERE, 'results', `${mode}.json`)
  writeFileSync(jsonFile, JSON.stringify(results, null, 2) + '\n')
  if (mode === 'full') writeReport()
  else printTable(table())
  console.log(`\n${mode} run: ${results.seconds} s; JSON in ${jsonFile}`)
}
