import { EventEmitter } from 'node:events'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { BODY_TIMEOUT, bodyDeadline, RECOMMENDED_SERVER_OPTIONS } from '../src/server-options.js'

// The hook on its own (the plugins' tests drive it over real sockets): a body that stalls has its
// socket closed and says so; a body that arrives, or no body at all, is left alone.
function call (headers: Record<string, string>, ms?: number) {
  const warnings: unknown[] = []
  let destroyed!: () => void
  const closed = new Promise<void>((resolve) => { destroyed = resolve })
  const request = { headers, log: { warn: (obj: unknown) => { warnings.push(obj) } }, raw: { destroy: () => { destroyed() } } }
  const payload = new PassThrough()
  const reply = { raw: new EventEmitter() }
  let passed: unknown
  const hook = ms === undefined ? bodyDeadline() : bodyDeadline(ms)
  hook(request as never, reply, payload, (_err, p) => { passed = p })
  return { warnings, closed, payload, reply, passed }
}

t.test('a request without a body passes at once, with no timer', async (t) => {
  const { passed, payload, warnings } = call({})
  t.equal(passed, payload)
  t.same(warnings, [])
  t.equal(BODY_TIMEOUT, 10_000)
  t.ok(RECOMMENDED_SERVER_OPTIONS.connectionTimeout > 0)
})

t.test('a body that stalls: the socket is closed and a request_timeout record is logged', async (t) => {
  const { closed, warnings, passed, payload } = call({ 'content-length': '10' }, 1)
  t.equal(passed, payload)
  await closed
  t.match(warnings, [{ audit: 'request_timeout' }])
})

t.test('a body that arrives (end, close, or the reply closing) clears the deadline', async (t) => {
  for (const finish of ['end', 'close', 'reply'] as const) {
    const { payload, reply, warnings } = call({ 'transfer-encoding': 'chunked' }, 5)
    if (finish === 'end') {
      payload.resume()
      payload.end()
    } else if (finish === 'close') {
      payload.destroy()
    } else {
      reply.raw.emit('close')
    }
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.same(warnings, [], `${finish}: nothing closed`)
  }
})
