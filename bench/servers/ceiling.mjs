// The ceiling: a bare Fastify JSON route (and a form POST echo), with the same server
// options as the bench's gateway and services: Fastify defaults, pino at LOG_LEVEL.
import Fastify from 'fastify'
import fastifyFormbody from '@fastify/formbody'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(fastifyFormbody)
app.get('/', async () => ({ hello: 'world' }))
app.post('/form', async (request) => ({ ok: typeof request.body === 'object' }))
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
