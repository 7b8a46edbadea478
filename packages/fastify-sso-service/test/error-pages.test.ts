import t from 'tap'
import Fastify from 'fastify'
import fastifyView from '@fastify/view'
import { compilePages, htmlErrorHandler } from '../src/html.js'
import { resolveOptions } from '../src/options.js'
import { buildApp, GATEWAY, SERVICE_TOKEN, SESSION_SECRET, SIGNING_SECRET } from './helpers.js'

t.test('bad input on a browser route gets an escaped 400 page, not JSON', async (t) => {
  const { app } = await buildApp(t)
  const res = await app.inject(`/login/?next=${'a'.repeat(7000)}`)
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /must NOT have more than/)
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('an unexpected failure shows a generic page and is logged, never a stack trace', async (t) => {
  const pages = compilePages(resolveOptions({ gatewayUrl: GATEWAY, token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET }))
  const app = Fastify()
  await app.register(fastifyView, { engine: { eta: pages.eta } })
  app.setErrorHandler(htmlErrorHandler(pages))
  app.get('/boom', async () => { throw new Error('SELECT * FROM secrets') })
  app.get('/weird', async () => { throw Object.assign(new Error('odd'), { statusCode: 302 }) })
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.match(res.body, /Something went wrong/)
  t.notMatch(res.body, /secrets/)
  const weird = await app.inject('/weird')
  t.equal(weird.statusCode, 500, 'a non-error status on an error becomes 500')
})
