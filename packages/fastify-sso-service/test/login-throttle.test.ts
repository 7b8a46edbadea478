import t from 'tap'
import { resolveOptions } from '../src/options.js'
import { Browser, buildApp, GATEWAY, SERVICE_TOKEN, SESSION_SECRET, SIGNING_SECRET } from './helpers.js'

// Risk: anyone could block every sign-in to a service: each anonymous GET /login/ spent one of the
// service's request tokens at the gateway. One client may now start `loginRateLimit.max` a window.

t.test('one client past its budget gets a 429 page; the gateway is not asked; other clients are not affected', async (t) => {
  const { app, gateway } = await buildApp(t, { loginRateLimit: { max: 3, timeWindow: 60_000 } })
  let obtained = 0
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, () => { obtained++; return { token: `t${obtained}` } }).persist()
  const attacker = new Browser(app)
  for (let i = 0; i < 3; i++) {
    const res = await attacker.request({ url: '/login/', remoteAddress: '203.0.113.66' })
    t.equal(res.statusCode, 302)
  }
  const limited = await attacker.request({ url: '/login/?next=/x', remoteAddress: '203.0.113.66' })
  t.equal(limited.statusCode, 429)
  t.match(limited.headers['content-type'], /text\/html/)
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60)
  t.match(limited.body, /Too many sign-in attempts from your address/)
  t.equal(obtained, 3, 'the refused request spent nothing at the gateway')
  const user = await new Browser(app).request({ url: '/login/', remoteAddress: '198.51.100.7' })
  t.equal(user.statusCode, 302)
  t.match(user.headers.location, new RegExp(`^${GATEWAY}/login/\\?sso=`))
})

t.test('loginRateLimit is checked at register', async (t) => {
  const base = { gatewayUrl: GATEWAY, token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET, database: ':memory:' }
  for (const [value, pattern] of [[5, /"loginRateLimit"/], [{ max: 0, timeWindow: 1000 }, /loginRateLimit.max/], [{ max: 1 }, /loginRateLimit.timeWindow/]] as const) {
    t.throws(() => resolveOptions({ ...base, loginRateLimit: value as never }), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: pattern })
  }
  t.same(resolveOptions(base).loginRateLimit, { max: 30, timeWindow: 60_000 }, 'the default')
})
