import t from 'tap'
import { Browser, buildApp, call, PASSWORD } from './helpers.js'

// A django-sso service learns of the user only through update_account: the sign-in waits
// for it (up to inlineEventTimeout) and, if it fails, shows a page with a retry instead of
// sending the browser back to a service that cannot let the user in.
t.test('django-sso: the service unreachable at sign-in gets a page with a retry, not a redirect', async (t) => {
  const { app, agent } = await buildApp({ inlineEventTimeout: 300 })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'legacy', baseUrl: 'http://legacy.test', protocol: 'django-sso' })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  const pool = agent.get('http://legacy.test')
  const seen: string[] = []
  const answer = (status: number) => (opts: { headers?: unknown }) => {
    seen.push((opts.headers as Record<string, string>)['webhook-id']!)
    // django-sso's answers: 200 {"ok": true} when taken; a failure here is a 500 (transport).
    return { statusCode: status, data: status === 200 ? '{"ok": true}' : '' }
  }
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(answer(500))

  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const page = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(page.statusCode, 503)
  t.equal(page.headers['retry-after'], '5')
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.body, /legacy is not reachable/)
  t.match(page.body, new RegExp(`href="/login/\\?sso=${token}"`), 'a retry link with the same request token')
  t.equal((await call(app, '/sso/get/', { token: secret, authentication_token: token })).statusCode, 409, 'the request is still pending: nothing half-done')
  t.match(await app.ssoGateway.events.status(), [{ serviceId: (await app.ssoGateway.getService('legacy'))!.id, pending: 1, dead: 0, failingSince: Number }])

  // The service times out: the page comes within the inline timeout.
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(answer(200)).delay(2000)
  const started = Date.now()
  const slow = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(slow.statusCode, 503, 'the retry link works (signed in here: no form), still unreachable')
  t.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`)

  // Back: the retry sends the queued events first, in order, then the new one, and completes.
  await new Promise((resolve) => setTimeout(resolve, 2100))
  pool.intercept({ path: '/sso/event/', method: 'POST' }).reply(answer(200)).times(5)
  const back = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(back.statusCode, 302)
  t.match(back.headers.location, /^http:\/\/legacy\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.same(await app.ssoGateway.events.status(), [], 'nothing left queued')
  t.equal(new Set(seen).size, 3, 'three update_account events in all (one per attempt at sign-in)')
  t.match((await call(app, '/sso/get/', { token: secret, authentication_token: token })).json(), { authenticated: true, user_identy: 'alice' })
})

t.test('fastify-sso: the service unreachable at sign-in: the sign-in completes, the event stays queued', async (t) => {
  const { app, agent } = await buildApp({ inlineEventTimeout: 200 })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'modern', baseUrl: 'http://modern.test' })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  agent.get('http://modern.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(503, '')
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const page = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(page.statusCode, 303)
  t.match(page.headers.location, /^http:\/\/modern\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.match(await app.ssoGateway.events.status(), [{ pending: 1, dead: 0 }])
})
