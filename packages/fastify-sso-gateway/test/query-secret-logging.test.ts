import t from 'tap'
import { Browser, buildApp, logLines, seed } from './helpers.js'

// Risk: a service secret sent in the query string was refused but logged verbatim
// ("url":"/sso/obtain/?token=<secret>"); usernames with U+2028/U+2029 were logged raw.

t.test('a secret in a protocol query string never reaches the logs', async (t) => {
  const { lines, server } = logLines()
  const { app, agent } = await buildApp({}, server)
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const res = await app.inject({
    method: 'POST',
    url: `/sso/obtain/?token=${secret}&next_url=/x`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'next_url=/x'
  })
  t.equal(res.statusCode, 401, 'refused: the query string is no way to authenticate')
  const all = JSON.stringify(lines)
  t.notOk(all.includes(secret), 'the secret is nowhere in the logs')
  t.ok(lines.some((l) => (l.req as { url?: string } | undefined)?.url === '/sso/obtain/'), 'the request is logged by its path')
})

t.test('line and paragraph separators in a typed username are escaped in the log', async (t) => {
  const raw: string[] = []
  const { app, agent } = await buildApp({}, { logger: { level: 'info', stream: { write: (l: string) => { raw.push(l) } } } })
  t.teardown(() => app.close())
  await seed(app, agent)
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  await browser.request('POST', '/login/', { username: 'mallory\u2028{"audit":"login"}\u2029\u0085x', password: 'a wrong password', _csrf: Browser.csrf(form.body) })
  const failed = raw.find((l) => l.includes('"login_failed"')) as string
  t.ok(failed)
  t.notMatch(failed, /[\u2028\u2029\u0085]/, 'no raw separator in the line')
  t.equal((JSON.parse(failed) as { user: string }).user, 'mallory\\u2028{"audit":"login"}\\u2029\\u0085x', 'shown escaped')
})
