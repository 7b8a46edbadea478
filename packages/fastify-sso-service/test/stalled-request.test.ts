import Fastify from 'fastify'
import { connect } from 'node:net'
import t from 'tap'
import fastifySsoService, { RECOMMENDED_SERVER_OPTIONS } from '../src/index.js'
import { isDatabaseError } from '../src/errors.js'
import { GATEWAY, SERVICE_TOKEN, SESSION_SECRET, SIGNING_SECRET } from './helpers.js'

// Risk: no request timeout: a stalled request body kept its socket open indefinitely. The
// service plugin's routes (pages and /sso/event/) close it after BODY_TIMEOUT (10 s); a server
// created with RECOMMENDED_SERVER_OPTIONS gets no warning. Real sockets; bounded waits.

t.test('a stalled event body is cut off; a server with the recommended options is not warned about', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS, logger: { level: 'info', stream: { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>) } } } })
  await app.register(fastifySsoService, {
    gatewayUrl: GATEWAY, token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET, database: ':memory:', cookieSecure: false
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.notOk(lines.some((l) => /no requestTimeout/.test(String(l.msg))), 'no warning')
  const { port } = app.server.address() as { port: number }
  for (const path of ['/sso/event/', '/logout/']) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    t.teardown(() => socket.destroy())
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // A byte every 4 s keeps the socket from idling out (10 s): only the body deadline can end it.
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`)
    const drip = setInterval(() => socket.write(' '), 4000)
    const closed = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref())
    ])
    clearInterval(drip)
    t.ok(closed, `${path}: a dripping body is cut off`)
  }
  t.ok(lines.filter((l) => l.audit === 'request_timeout').length >= 2, 'logged')
})

t.test('isDatabaseError tells SQLite failures from the rest', async (t) => {
  t.equal(isDatabaseError(Object.assign(new Error('full'), { code: 'SQLITE_FULL' })), true)
  t.equal(isDatabaseError(Object.assign(new Error('x'), { code: 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE' })), false)
  t.equal(isDatabaseError(new Error('no code')), false)
  t.equal(isDatabaseError(null), false)
})
