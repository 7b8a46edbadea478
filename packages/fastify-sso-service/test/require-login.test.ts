import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { Browser, buildApp, signIn } from './helpers.js'

function routes (app: FastifyInstance): void {
  app.get('/private', { preHandler: app.requireLogin }, async (request) => ({ hello: request.ssoUser?.username }))
  app.get('/public', async (request) => ({ user: request.ssoUser }))
  app.register(async (scope) => {
    scope.addHook('preHandler', scope.requireLogin)
    scope.get('/admin/area', async () => ({ secret: 42 }))
  })
}

t.test('an anonymous browser is redirected to the login with next', async (t) => {
  const { app } = await buildApp(t)
  routes(app)
  const res = await app.inject({ url: '/private?tab=2', headers: { accept: 'text/html,application/xhtml+xml' } })
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/login/?next=%2Fprivate%3Ftab%3D2')
  t.equal(res.headers['cache-control'], 'no-store')
  const scoped = await app.inject({ url: '/admin/area', headers: { accept: 'TEXT/HTML' } })
  t.equal(scoped.statusCode, 302, 'works as a hook for a whole context')
  t.equal(scoped.headers.location, '/login/?next=%2Fadmin%2Farea')
})

t.test('a path that would be an unsafe next sends to the plain login', async (t) => {
  const { app } = await buildApp(t)
  app.get('/*', { preHandler: app.requireLogin }, async () => 'x')
  const res = await app.inject({ url: '//evil.example/x', headers: { accept: 'text/html' } })
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/login/')
})

t.test('an anonymous API client gets a 401 JSON error', async (t) => {
  const { app } = await buildApp(t)
  routes(app)
  for (const accept of ['application/json', undefined]) {
    const res = await app.inject({ url: '/private', headers: accept === undefined ? {} : { accept } })
    t.equal(res.statusCode, 401)
    t.same(res.json(), { error: 'Authentication required', code: 'FST_SSO_SERVICE_UNAUTHENTICATED' })
  }
  const pub = await app.inject('/public')
  t.same(pub.json(), { user: null }, 'request.ssoUser is null when anonymous')
})

t.test('a signed-in user goes through', async (t) => {
  const { app, gateway } = await buildApp(t)
  routes(app)
  const browser = new Browser(app)
  const res = await signIn(browser, gateway, { next: '/private' })
  t.equal(res.headers.location, '/private')
  const page = await browser.request('/private')
  t.equal(page.statusCode, 200)
  t.same(page.json(), { hello: 'alice' })
  t.equal((await browser.request('/admin/area')).statusCode, 200)
})
