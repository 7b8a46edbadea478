import t from 'tap'
import { audits, Browser, buildApp, signIn } from './helpers.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `check` holds (the keep-alive runs in the background), bounded. */
async function eventually (check: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(20)
  }
  return false
}

t.test('an active user keeps the SSO session alive at the gateway, in the background and at most every keepAliveInterval', async (t) => {
  const { app, gateway } = await buildApp(t, { keepAliveInterval: 200 })
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: 'gw-7' })
  const touched: string[] = []
  gateway.intercept({ path: '/sso/touch/', method: 'POST' }).reply(200, (o) => {
    touched.push(new URLSearchParams(String(o.body)).get('sso_session') as string)
    return { ok: true }
  }).persist()
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  t.same(touched, [], 'not right after sign-in')
  await sleep(250)
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  t.ok(await eventually(() => touched.length > 0), 'the gateway was told')
  t.same(touched, ['gw-7'], 'once per interval, whatever the number of requests')
})

t.test('an SSO session the gateway says has ended ends here too', async (t) => {
  const { app, gateway, logs } = await buildApp(t, { keepAliveInterval: 100 })
  const browser = new Browser(app)
  await signIn(browser, gateway, { ssoSession: 'gw-8' })
  gateway.intercept({ path: '/sso/touch/', method: 'POST' }).reply(404, { error: 'This SSO session has ended', code: 'FST_SSO_GATEWAY_UNKNOWN_SSO_SESSION' })
  await sleep(150)
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'this request is answered as it was')
  t.ok(await eventually(async () => (await browser.request('/sso/test/')).statusCode === 302), 'then the session is gone')
  t.ok(audits(logs, 'session_ended').length > 0)
})

t.test('a gateway that cannot be reached changes nothing; keepAliveInterval 0 sends nothing', async (t) => {
  const down = await buildApp(t, { keepAliveInterval: 100 })
  const browser = new Browser(down.app)
  await signIn(browser, down.gateway, { ssoSession: 'gw-9' })
  down.gateway.intercept({ path: '/sso/touch/', method: 'POST' }).replyWithError(new Error('connection refused'))
  await sleep(150)
  t.equal((await browser.request('/sso/test/')).statusCode, 200)
  await sleep(50)
  t.equal((await browser.request('/sso/test/')).statusCode, 200, 'still signed in')

  const off = await buildApp(t, { keepAliveInterval: 0 })
  const other = new Browser(off.app)
  await signIn(other, off.gateway, { ssoSession: 'gw-10' })
  let calls = 0
  off.gateway.intercept({ path: '/sso/touch/', method: 'POST' }).reply(200, () => { calls++; return { ok: true } }).persist()
  await sleep(50)
  t.equal((await other.request('/sso/test/')).statusCode, 200)
  await sleep(20)
  t.equal(calls, 0, 'keepAliveInterval 0: no touch is ever sent')
})

t.test('keepAliveInterval is checked at register', async (t) => {
  await t.rejects(buildApp(t, { keepAliveInterval: -5 }), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: /keepAliveInterval/ })
})
