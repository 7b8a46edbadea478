// Summarizes V8 .cpuprofile files (node --cpu-prof): self time by function and by
// package, and inclusive time of this repository's own functions.
// usage: node bench/profile.mjs <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs'

const [file, topArg] = process.argv.slice(2)
const top = Number(topArg ?? 25)
const prof = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const total = prof.endTime - prof.startTime // µs
const interval = total / prof.samples.length

function where (cf) {
  const url = cf.url ?? ''
  const pkg = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]
  const ours = /packages\/([^/]+)\//.exec(url)
  if (ours !== null) return `OURS:${ours[1]}`
  if (url.startsWith('node:')) return 'node'
  if (url.includes('/bench/')) return 'bench'
  if (url === '') return cf.functionName === '(garbage collector)' ? 'gc' : cf.functionName === '(idle)' ? 'idle' : cf.functionName === '(program)' ? 'program' : 'native'
  return url
}

const self = new Map()
const pkgs = new Map()
for (const n of prof.nodes) {
  const t = n.hitCount * interval
  const cf = n.callFrame
  const key = `${cf.functionName || '(anonymous)'} ${where(cf)}:${cf.lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + t)
  const p = where(cf)
  pkgs.set(p, (pkgs.get(p) ?? 0) + t)
}

// Inclusive time of our own functions (counted once per sample stack).
const parent = new Map()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const inclusive = new Map()
const hits = new Map()
for (const id of prof.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
for (const [id, count] of hits) {
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = byId.get(cur).callFrame
    if (!where(cf).startsWith('OURS:')) continue
    const key = `${cf.functionName || '(anonymous)'} ${where(cf)}:${cf.lineNumber + 1}`
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + count * interval)
  }
}

const busy = total - (pkgs.get('idle') ?? 0)
const pct = (t) => `${(t / busy * 100).toFixed(1)}%`.padStart(6)
const show = (title, m, n) => {
  console.log(`\n${title}`)
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(t)}  ${(t / 1000).toFixed(0).padStart(7)} ms  ${k}`)
}
console.log(`${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)`)
show('self time by package', pkgs, 20)
show('self time by function', self, top)
show('inclusive time of our functions', inclusive, top)
