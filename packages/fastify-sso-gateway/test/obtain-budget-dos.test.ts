import t from 'tap'
import { Browser, buildApp, call, seed, signIn } from './helpers.js'

// Risk: anyone could block every sign-in to a service by calling its /login/ (each call spends
// an /sso/obtain/ at the gateway). Now only sign-ins that complete spend the service's budget.

t.test('tokens nobody uses do not spend the sign-in budget: a real user still signs in', async (t) => {
  const { app, agent } = await buildApp({ obtainRateLimit: { max: 3, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  // An anonymous flood through the service's /login/: tokens obtained, never used (under the 10× ceiling).
  for (let i = 0; i < 29; i++) t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 200)
  await signIn(app, new Browser(app), secret)
  t.pass('the user signed in after 29 unused obtains, with a budget of 3')
})

t.test('sign-ins beyond the budget are refused at obtain with Retry-After; other services keep theirs', async (t) => {
  const { app, agent } = await buildApp({ obtainRateLimit: { max: 2, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const other = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  await signIn(app, new Browser(app), secret)
  await signIn(app, new Browser(app), secret)
  const limited = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'FST_SSO_GATEWAY_RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60)
  t.equal((await call(app, '/sso/obtain/', { token: other.secret, next_url: '/x' })).statusCode, 200, 'another service has its own budget')
})

t.test('a runaway caller (10 × the budget in raw obtains) is refused', async (t) => {
  const { app, agent } = await buildApp({ obtainRateLimit: { max: 1, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  for (let i = 0; i < 10; i++) t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 200)
  t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).statusCode, 429, 'the 11th raw obtain is refused')
})

t.test('honest load: 32 browsers, 640 sign-ins through one service in one window, none refused', async (t) => {
  // Every browser here comes from 127.0.0.1: the per-address password budget is raised for them.
  const { app, agent } = await buildApp({ loginRateLimit: { max: 100, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  // The old budget (600 obtains a minute, every obtain counted) failed 32 browsers signing in and
  // out. Each browser signs in once with its password, then again and again silently.
  const browsers = await Promise.all(Array.from({ length: 32 }, async () => {
    const b = new Browser(app)
    await signIn(app, b, secret)
    return b
  }))
  let failures = 0
  await Promise.all(browsers.map(async (browser) => {
    for (let i = 0; i < 19; i++) {
      const obtained = await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
      const res = obtained.statusCode === 200 ? await browser.request('GET', `/login/?sso=${(obtained.json() as { token: string }).token}`) : null
      if (res?.statusCode !== 302) failures++
    }
  }))
  t.equal(failures, 0, 'no sign-in refused')
})
