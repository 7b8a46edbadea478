import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { Browser, buildApp, call, PASSWORD, seed } from './helpers.js'

// Risk: every anonymous GET /login/ stored a gateway session row kept 30 minutes (storage DoS).
// The anonymous form's CSRF token is bound to a cookie instead; a row exists once a password is accepted.

t.test('showing the form, even 50 times and after a wrong password, stores no session row', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const { app, agent } = await buildApp({ database: file })
  t.teardown(() => app.close())
  const { secret } = await seed(app, agent)
  const rows = (): number => {
    const db = new Database(file, { readonly: true })
    try {
      return (db.prepare('SELECT count(*) AS n FROM gateway_sessions').get() as { n: number }).n
    } finally {
      db.close()
    }
  }
  for (let i = 0; i < 25; i++) {
    await new Browser(app).request('GET', '/login/')
    const token = (await call(app, '/sso/obtain/', { token: secret, next_url: '/x' })).json().token as string
    await new Browser(app).request('GET', `/login/?sso=${token}`)
  }
  t.equal(rows(), 0, 'no row for 50 anonymous forms')
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const wrong = await browser.request('POST', '/login/', { username: 'alice', password: 'not the password', _csrf: Browser.csrf(form.body) })
  t.equal(wrong.statusCode, 401)
  t.equal(rows(), 0, 'no row after a wrong password')
  const ok = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(wrong.body) })
  t.equal(ok.statusCode, 303)
  t.equal(rows(), 1, 'one row once signed in')
  t.notOk(browser.cookies.has('sso_gateway_session_form'), 'the form cookie is cleared at sign-in')
})

t.test('the cookie-bound token still stops cross-site posts', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  await seed(app, agent)
  const victim = new Browser(app)
  await victim.request('GET', '/login/')
  const attacker = new Browser(app)
  const attackerForm = await attacker.request('GET', '/login/')
  // The attacker's own token, posted from the victim's browser (which has its own form cookie).
  const forged = await victim.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(attackerForm.body) })
  t.equal(forged.statusCode, 403)
  t.match(forged.body, /did not come from this site/)
  const missing = await victim.request('POST', '/login/', { username: 'alice', password: PASSWORD })
  t.equal(missing.statusCode, 403, 'a form cookie but no token: refused')
  const none = await new Browser(app).request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: 'x' })
  t.equal(none.statusCode, 403, 'no form cookie, no session: refused')
  // A form cookie that is not one of ours is replaced, never trusted.
  const planted = new Browser(app)
  planted.cookies.set('sso_gateway_session_form', 'short')
  const form = await planted.request('GET', '/login/')
  t.not(planted.cookies.get('sso_gateway_session_form'), 'short')
  t.equal((await planted.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })).statusCode, 303)
})
