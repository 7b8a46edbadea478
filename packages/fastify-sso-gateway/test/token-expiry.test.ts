import t from 'tap'
import { Browser, buildApp, call, PASSWORD, seed, signIn, storeOf } from './helpers.js'

const sleep = async (ms: number) => await new Promise((resolve) => setTimeout(resolve, ms))

t.test('a pending token expires after pendingTokenTtl', async (t) => {
  const { app, agent } = await buildApp({ pendingTokenTtl: 1000 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(form.statusCode, 200)
  await sleep(1100)
  const late = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(late.statusCode, 400, 'the form cannot complete an expired request')
  t.match(late.body, /This sign-in link is no longer valid/)
  t.match(late.body, /Go back to the application you came from and sign in again/, 'says how to retry')
  t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: token })).statusCode, 404)
})

t.test('an authenticated token expires after authenticatedTokenTtl', async (t) => {
  const { app, agent } = await buildApp({ authenticatedTokenTtl: 1000 })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const token = await signIn(app, new Browser(app), secret)
  t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: token })).statusCode, 200, 'readable in time')
  await sleep(1100)
  for (const path of ['/sso/get/', '/sso/make_used/']) {
    const res = await call(app, path, { token: secret, authentication_token: token })
    t.equal(res.statusCode, 404, `${path} after expiry`)
    t.equal(res.json().code, 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN')
  }
})

t.test('expired token rows are pruned by the housekeeping sweep', async (t) => {
  // The sweep runs every minute; catch its timer to run it now.
  const realSetInterval = globalThis.setInterval
  const sweeps: Array<() => void> = []
  globalThis.setInterval = ((fn: () => void, ms: number) => {
    if (ms === 60_000) sweeps.push(fn)
    return realSetInterval(fn, ms)
  }) as typeof setInterval
  let built
  try {
    built = await buildApp({ pendingTokenTtl: 1000 })
  } finally {
    globalThis.setInterval = realSetInterval
  }
  const { app, agent } = built
  t.teardown(() => app.close())
  t.equal(sweeps.length, 1)
  const { secret } = await seed(app, agent)
  for (let i = 0; i < 3; i++) await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })
  const db = storeOf(app).db
  const count = () => (db.prepare('SELECT count(*) AS n FROM request_tokens').get() as { n: number }).n
  t.equal(count(), 3)
  sweeps[0]!()
  await sleep(10)
  t.equal(count(), 3, 'live tokens stay')
  await sleep(1100)
  sweeps[0]!()
  await sleep(10)
  t.equal(count(), 0, 'expired tokens are gone')
})
