import t from 'tap'
import { Browser, buildApp, call, PASSWORD, seed } from './helpers.js'

const BAD_NEXT_URLS = [
  'https://evil.example/',
  '//evil.example/',
  '/\\evil.example',
  '\\\\evil.example',
  '/%2F%2Fevil.example',
  '/%5Cevil.example',
  'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'http:evil.example',
  '/\tevil',
  '\u0000/x',
  '／／evil.example',
  'https://user@evil.example',
  'relative/path',
  ' /x'
]

t.test('obtain refuses every next_url that is not a relative path on the service', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  for (const nextUrl of BAD_NEXT_URLS) {
    const res = await call(app, '/sso/obtain/', { token: secret, next_url: nextUrl })
    t.equal(res.statusCode, 400, JSON.stringify(nextUrl))
    t.equal(res.json().code, 'FST_SSO_GATEWAY_INVALID_NEXT_URL', JSON.stringify(nextUrl))
  }
  for (const nextUrl of ['/', '/a/b?c=d#e', '/caf%C3%A9']) {
    t.equal((await call(app, '/sso/obtain/', { token: secret, next_url: nextUrl })).statusCode, 200, JSON.stringify(nextUrl))
  }
})

t.test('the redirect after sign-in uses only the registered base URL, not Host or forwarding headers', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  const res = await app.inject({
    method: 'POST',
    url: `/login/?sso=${token}`,
    headers: {
      cookie,
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      forwarded: 'host=evil.example;proto=https',
      'content-type': 'application/x-www-form-urlencoded'
    },
    payload: new URLSearchParams({ username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) }).toString()
  })
  t.equal(res.statusCode, 303)
  t.match(res.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('a base URL with a path keeps it, without a doubled slash', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'sub', baseUrl: 'https://apps.example/shop/' })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  const { token } = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json() as { token: string }
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const res = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.match(res.headers.location, /^https:\/\/apps\.example\/shop\/sso\/accept\/(\?code=[\w-]{43})?$/)
})
