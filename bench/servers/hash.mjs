// The raw argon2id rate on this machine: verify() with the production parameters, as many
// at once as libuv's thread pool runs (what a gateway process can do at most), for DURATION ms.
import { hash as argonHash, verify } from '@node-rs/argon2'
import { performance } from 'node:perf_hooks'

// algorithm 2 = Argon2id (@node-rs/argon2's const enum, not importable under isolatedModules)
const params = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 }
const hash = await argonHash('correct horse battery staple', params)
const concurrency = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
const duration = Number(process.env.DURATION ?? 5000)
const maxOps = Number(process.env.MAX_OPS ?? 2000)
let ops = 0
await verify(hash, 'warm up')
const start = performance.now()
const cpu0 = process.cpuUsage()
const times = []
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (performance.now() - start < duration && ops < maxOps) {
    ops++
    const t0 = performance.now()
    if (!await verify(hash, 'correct horse battery staple')) throw new Error('verify failed')
    times.push(performance.now() - t0)
  }
}))
const seconds = (performance.now() - start) / 1000
const cpu = process.cpuUsage(cpu0)
times.sort((a, b) => a - b)
process.stdout.write(JSON.stringify({ ops, seconds, rate: ops / seconds, concurrency, p50: times[Math.floor(times.length / 2)], cpuMsPerOp: (cpu.user + cpu.system) / 1000 / ops, params }) + '\n')
