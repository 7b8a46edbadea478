// The memory store runs the whole gateway (development, tests) and says so, once, in production.
import t from 'tap'
import { MemoryGatewayStore } from '../src/index.js'
import { Browser, buildApp, call, seed, signIn } from './helpers.js'

t.test('a sign-in through a gateway on the memory store', async (t) => {
  const { app, agent } = await buildApp({ store: new MemoryGatewayStore() })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const browser = new Browser(app)
  const token = await signIn(app, browser, secret)
  t.match((await call(app, '/sso/get/', { token: secret, authentication_token: token })).json(), { authenticated: true, user_identy: 'alice' })
  t.equal((await call(app, '/sso/make_used/', { token: secret, authentication_token: token })).statusCode, 200)
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'the browser session is kept in memory')
  await app.ssoGateway.events.flush()
  t.same(await app.ssoGateway.events.status(), [], 'its update_account was delivered')
})

t.test('used with NODE_ENV=production it warns, once per process', async (t) => {
  const env = process.env.NODE_ENV
  t.teardown(() => { process.env.NODE_ENV = env })
  const warnings: Error[] = []
  const listener = (w: Error): void => { warnings.push(w) }
  process.on('warning', listener)
  t.teardown(() => { process.off('warning', listener) })
  process.env.NODE_ENV = 'development'
  void new MemoryGatewayStore()
  process.env.NODE_ENV = 'production'
  void new MemoryGatewayStore()
  void new MemoryGatewayStore()
  await new Promise((resolve) => setImmediate(resolve))
  const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'FST_SSO_GATEWAY_MEMORY_STORE')
  t.equal(ours.length, 1)
  t.match(ours[0]?.message, /lost at restart/)
})
