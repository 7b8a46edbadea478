import { Writable } from 'node:stream'
import t from 'tap'
import { Browser, buildApp, call, PASSWORD, seed } from './helpers.js'

/** Raw log lines, as written. */
function captureLogs (): { lines: string[], stream: Writable } {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''))
      cb()
    }
  })
  return { lines, stream }
}

t.test('no request token, secret, password or cookie reaches the logs; audit records do', async (t) => {
  const { lines, stream } = captureLogs()
  const { app, agent } = await buildApp({}, { logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  const { secret, signingSecret } = await seed(app, agent)

  const token = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json().token as string
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: 'wrong-password-123', _csrf: Browser.csrf(form.body) })
  const again = await browser.request('GET', `/login/?sso=${token}`)
  await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(again.body) })
  await call(app, '/sso/get/', { token: secret, authentication_token: token })
  await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  await call(app, '/sso/make_used/', { token: secret, authentication_token: token })
  await call(app, '/sso/obtain/', { token: 'wrong-secret-value-xyz', next_url: '/x' })
  await app.ssoGateway.events.flush()

  const all = lines.join('\n')
  const cookie = [...browser.cookies.values()][0] as string
  for (const [what, value] of [['request token', token], ['service secret', secret], ['signing secret', signingSecret],
    ['password', PASSWORD], ['wrong password', 'wrong-password-123'], ['wrong secret', 'wrong-secret-value-xyz'],
    ['session cookie', cookie], ['session id', cookie.split('.')[0] as string]] as const) {
    t.notOk(all.includes(value), `no ${what} in the logs`)
  }
  const audits = lines.map((l) => JSON.parse(l) as { audit?: string }).map((l) => l.audit).filter(Boolean)
  for (const name of ['token_issued', 'login_failed', 'login', 'token_authenticated', 'token_redeemed', 'token_replayed', 'service_auth_failed']) {
    t.ok(audits.includes(name), `audit record ${name}`)
  }
  t.match(all, /"url":"\/login\/\?sso=\[redacted\]"/, 'the login URL is logged with the token redacted')
})

t.test('user input cannot forge a log line', async (t) => {
  const { lines, stream } = captureLogs()
  const { app, agent } = await buildApp({}, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const forged = 'mallory\n{"level":30,"audit":"login","user":"admin","msg":"sso sign-in"}'
  await browser.request('POST', '/login/', { username: forged, password: 'x', _csrf: Browser.csrf(form.body) })
  const parsed = lines.map((l) => JSON.parse(l) as { audit?: string, user?: string })
  t.equal(parsed.length, lines.length, 'every line is one JSON record')
  t.notOk(parsed.some((l) => l.audit === 'login'), 'no forged sign-in record')
  t.ok(parsed.some((l) => l.audit === 'login_failed' && typeof l.user === 'string' && l.user.includes('\n')), 'the newline stays inside the string')
})
