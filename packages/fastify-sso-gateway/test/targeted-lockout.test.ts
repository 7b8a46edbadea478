import t from 'tap'
import { Browser, buildApp, PASSWORD, seed } from './helpers.js'

// Risk: ten wrong passwords from anywhere locked the real user out for 15 minutes, renewably
// (a lockout an attacker could aim at a victim). Failures now count per (account, client address).

t.test('an attacker who locks alice out from their address does not lock alice out elsewhere', async (t) => {
  const { app, agent } = await buildApp({}, { trustProxy: true })
  t.teardown(() => app.close())
  await seed(app, agent)
  const attacker = new Browser(app, { 'x-forwarded-for': '203.0.113.66' })
  let page = await attacker.request('GET', '/login/')
  for (let i = 0; i < 10; i++) {
    page = await attacker.request('POST', '/login/', { username: 'alice', password: `guess number ${i}`, _csrf: Browser.csrf(page.body) })
    t.equal(page.statusCode, 401)
  }
  const locked = await attacker.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(page.body) })
  t.equal(locked.statusCode, 429, 'the attacking address is locked for alice, even with the right password')
  t.ok(Number(locked.headers['retry-after']) > 0 && Number(locked.headers['retry-after']) <= 900)

  const owner = new Browser(app, { 'x-forwarded-for': '198.51.100.7' })
  const form = await owner.request('GET', '/login/')
  const ok = await owner.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(ok.statusCode, 303, 'alice signs in from her own address')

  // The attacker's renewed attempts keep only the attacker out.
  const again = await attacker.request('POST', '/login/', { username: 'alice', password: 'still guessing', _csrf: Browser.csrf(locked.body) })
  t.equal(again.statusCode, 429)
  const second = new Browser(app, { 'x-forwarded-for': '198.51.100.7' })
  const form2 = await second.request('GET', '/login/')
  t.equal((await second.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form2.body) })).statusCode, 303)
})
