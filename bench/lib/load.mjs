// Closed-loop load: `concurrency` workers each run `op` back to back until the time or
// the count budget is spent (both always bounded). Latencies in ms, per label.
import { performance } from 'node:perf_hooks'

export function percentile (sorted, p) {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

/** Summary of a list of latencies (ms). */
export function summarize (values) {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? null : sum / sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? null : sorted[sorted.length - 1]
  }
}

/**
 * Runs `op(worker, i)` with `concurrency` workers for at most `durationMs` and at most
 * `maxOps` operations. `op` returns nothing or a label -> ms map of sub-latencies.
 * Errors are counted; more than `maxErrors` of them abort the run.
 */
export async function closedLoop ({ concurrency, durationMs, maxOps = Infinity, op, maxErrors = 50, warmupMs = 0 }) {
  const latencies = []
  const errors = []
  let issued = 0
  let done = 0
  const start = performance.now()
  const measureFrom = start + warmupMs
  const deadline = start + warmupMs + durationMs
  let measuredOps = 0
  let firstMeasured = null
  let lastDone = start
  async function worker (w) {
    while (performance.now() < deadline && issued < maxOps && errors.length <= maxErrors) {
      const i = issued++
      const t0 = performance.now()
      try {
        await op(w, i)
        const t1 = performance.now()
        done++
        if (t0 >= measureFrom) {
          firstMeasured ??= t0
          latencies.push(t1 - t0)
          measuredOps++
          lastDone = t1
        }
      } catch (err) {
        errors.push(err)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)))
  if (errors.length > maxErrors) {
    const e = new Error(`load aborted after ${errors.length} errors: ${errors[0]?.message}`)
    e.cause = errors[0]
    throw e
  }
  const elapsed = firstMeasured === null ? 0 : (lastDone - measureFrom) / 1000
  return {
    ops: measuredOps,
    totalOps: done,
    errors: errors.length,
    firstError: errors[0]?.message,
    seconds: elapsed,
    rate: elapsed > 0 ? measuredOps / elapsed : 0,
    latency: summarize(latencies),
    latencies
  }
}
