import t from 'tap'
import Fastify from 'fastify'
import { escapeHtml, htmlErrorHandler } from '../src/html.js'
import { buildApp } from './helpers.js'

t.test('escapeHtml escapes the five HTML characters', async (t) => {
  t.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
})

t.test('bad input on a browser route gets an escaped 400 page, not JSON', async (t) => {
  const { app } = await buildApp(t)
  const res = await app.inject(`/login/?next=${'a'.repeat(7000)}`)
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /must NOT have more than/)
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('an unexpected failure shows a generic page and is logged, never a stack trace', async (t) => {
  const app = Fastify()
  app.setErrorHandler(htmlErrorHandler)
  app.get('/boom', async () => { throw new Error('SELECT * FROM secrets') })
  app.get('/weird', async () => { throw Object.assign(new Error('odd'), { statusCode: 302 }) })
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 500)
  t.match(res.body, /Something went wrong/)
  t.notMatch(res.body, /secrets/)
  const weird = await app.inject('/weird')
  t.equal(weird.statusCode, 500, 'a non-error status on an error becomes 500')
})
