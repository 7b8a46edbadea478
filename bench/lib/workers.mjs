// Load from worker threads (undici), several at once so that one JavaScript thread is never
// the limit: each runs its share of the loops; their CPU is this process's, measured as the client's.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { summarize } from './load.mjs'

const WORKER = new URL('./load-worker.mjs', import.meta.url)

/** How many load threads: the bench machine's cores, at least 2. */
export const LOAD_THREADS = Math.max(2, availableParallelism())

/**
 * Starts `threads` workers running `flow` with `concurrency` loops in all; once every worker is
 * set up, calls `measure(run)` where `run()` starts the loops and resolves with the merged result
 * { ops, seconds, rate, errors, latency }.
 */
export async function workerLoad ({ flow, params, concurrency, durationMs, maxOps = 2_000_000, threads = LOAD_THREADS, measure }) {
  const n = Math.max(1, Math.min(threads, concurrency))
  const workers = []
  const results = []
  const readies = []
  for (let index = 0; index < n; index++) {
    const share = Math.floor(concurrency / n) + (index < concurrency % n ? 1 : 0)
    const w = new Worker(WORKER, { workerData: { flow, params, index, workers: n, concurrency: share, durationMs, maxOps: Math.ceil(maxOps / n) } })
    workers.push(w)
    const done = new Promise((resolve, reject) => {
      w.on('message', (m) => {
        if (m.error !== undefined) reject(new Error(`load worker ${index}: ${m.error}`))
        if (m.result !== undefined) resolve(m.result)
      })
      w.once('error', reject)
      w.once('exit', (code) => reject(new Error(`load worker ${index} exited (${code}) without a result`)))
    })
    done.catch(() => {}) // awaited below; a failure before that must not be an unhandled rejection
    results.push(done)
    readies.push(new Promise((resolve, reject) => {
      w.on('message', (m) => { if (m.ready === true) resolve() })
      done.catch(reject)
    }))
  }
  try {
    await Promise.all(readies)
    return await measure(async () => {
      for (const w of workers) w.postMessage('go')
      const all = await Promise.all(results)
      const ops = all.reduce((a, r) => a + r.ops, 0)
      const seconds = Math.max(...all.map((r) => r.seconds))
      return {
        ops,
        seconds,
        rate: all.reduce((a, r) => a + (r.seconds > 0 ? r.ops / r.seconds : 0), 0),
        errors: all.reduce((a, r) => a + r.errors, 0),
        firstError: all.find((r) => r.firstError !== undefined)?.firstError,
        latency: summarize(all.flatMap((r) => r.latencies))
      }
    })
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
}
