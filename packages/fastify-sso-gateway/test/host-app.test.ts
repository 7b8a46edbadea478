import Fastify from 'fastify'
import t from 'tap'
import fastifySsoGateway from '../src/index.js'
import { SESSION_SECRET } from './helpers.js'

t.test('the gateway leaves the host app\'s not-found handling alone', async (t) => {
  const app = Fastify()
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:', cookieSecure: false })
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).type('text/plain').send('host: no such page'))
  app.get('/', async () => 'host home')
  await app.ready()
  t.teardown(() => app.close())

  const unknown = await app.inject('/no/such/page')
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.body, 'host: no such page', 'an unknown URL gets the host\'s own handler, registered after the gateway')
  t.equal((await app.inject('/sso/nothing-here/')).body, 'host: no such page', 'even under /sso/')
  t.equal((await app.inject('/')).body, 'host home')
  t.equal((await app.inject('/login/')).statusCode, 200, 'the gateway\'s pages still answer')
})

t.test('without a host handler, unknown URLs get Fastify\'s default answer, not the gateway\'s', async (t) => {
  const app = Fastify()
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:' })
  await app.ready()
  t.teardown(() => app.close())
  const res = await app.inject('/no/such/page')
  t.equal(res.statusCode, 404)
  t.match(res.json(), { message: 'Route GET:/no/such/page not found', error: 'Not Found' })
})
