// A load worker thread: sets its flow up, says ready, runs the closed loop on 'go', posts the result.
import { parentPort, workerData } from 'node:worker_threads'
import { flows } from './flows.mjs'
import { closePools } from './http.mjs'
import { closedLoop } from './load.mjs'

const { flow, params, index, workers, concurrency, durationMs, maxOps } = workerData
try {
  const f = await flows[flow](params, { index, workers, concurrency })
  parentPort.postMessage({ ready: true })
  await new Promise((resolve) => parentPort.once('message', resolve))
  const r = await closedLoop({ concurrency, durationMs, maxOps: Math.min(maxOps, f.maxOps ?? Infinity), op: f.op })
  parentPort.postMessage({ result: { ops: r.ops, errors: r.errors, firstError: r.firstError, seconds: r.seconds, latencies: r.latencies } })
} catch (err) {
  parentPort.postMessage({ error: String(err?.stack ?? err) })
} finally {
  await closePools()
}
