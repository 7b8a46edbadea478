import Fastify from 'fastify'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import fastifySsoGateway, { RECOMMENDED_SERVER_OPTIONS } from '../src/index.js'
import { logLines, SESSION_SECRET } from './helpers.js'

// Risk: no request timeout: a stalled request body kept its socket open indefinitely (none closed
// in 100 s); idle and slow-header sockets took ~85 s. The plugin's routes now cut a started body
// off after BODY_TIMEOUT (10 s) whatever the server options; RECOMMENDED_SERVER_OPTIONS close
// idle sockets after 10 s. Both on real sockets here; the waits are bounded (30 s), not timed.

async function open (app: ReturnType<typeof Fastify>): Promise<{ socket: Socket, closed: Promise<boolean>, answer: () => string }> {
  const { port } = app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (d: Buffer) => { answer += d.toString() })
  socket.on('error', () => {})
  const closed = Promise.race([
    new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref())
  ])
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  return { socket, closed, answer: () => answer }
}

t.test('a stalled sign-in body is cut off even on a server with no timeouts at all', async (t) => {
  const { lines, server } = logLines()
  const app = Fastify(server) // Fastify's defaults: no request or connection timeout
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:', cookieSecure: false })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.ok(lines.some((l) => l.level === 40 && /no requestTimeout/.test(String(l.msg))), 'and the plugin warned about that server at register')
  const { socket, closed } = await open(app)
  t.teardown(() => socket.destroy())
  // Headers promise 1000 bytes; 10 come, then nothing.
  socket.write('POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=a')
  t.ok(await closed, 'the server closed the stalled socket')
  t.ok(lines.some((l) => l.audit === 'request_timeout'), 'and logged it')

  // Bodies that arrive are not cut off: an empty one, and a chunked one that ends.
  const empty = await app.inject({ method: 'POST', url: '/sso/obtain/', headers: { 'content-length': '0', 'content-type': 'application/json' } })
  t.not(empty.statusCode, 0)
  const { socket: chunked, answer } = await open(app)
  t.teardown(() => chunked.destroy())
  chunked.write('POST /sso/obtain/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n')
  chunked.write('b\r\nnext_url=/x\r\n0\r\n\r\n')
  for (let i = 0; i < 100 && answer() === ''; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(answer(), /^HTTP\/1\.1 401/, 'a chunked body that ends is read and answered')
})

t.test('with RECOMMENDED_SERVER_OPTIONS an idle socket is closed', async (t) => {
  t.match(RECOMMENDED_SERVER_OPTIONS, { connectionTimeout: 10_000, keepAliveTimeout: 5_000, requestTimeout: 15_000, http: { headersTimeout: 10_000 } })
  const app = Fastify({ ...RECOMMENDED_SERVER_OPTIONS })
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:', cookieSecure: false })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const idle = await open(app)
  t.teardown(() => idle.socket.destroy())
  const slow = await open(app)
  t.teardown(() => slow.socket.destroy())
  slow.socket.write('GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n') // headers never finish
  t.ok(await idle.closed, 'a socket that sends nothing is closed')
  t.ok(await slow.closed, 'a socket whose headers never finish is closed')
})
