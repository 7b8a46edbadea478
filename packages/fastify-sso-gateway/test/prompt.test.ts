import t from 'tap'
import { SqliteGatewayStore } from '../src/index.js'
import { Browser, buildApp, call, obtain, PASSWORD, record, signInAs, sleep, storeOf } from './helpers.js'

async function setup () {
  const { app, agent } = await buildApp()
  const api = app.ssoGateway
  await api.createUser({ username: 'alice', password: PASSWORD })
  await api.createUser({ username: 'bob', password: PASSWORD })
  const alpha = await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const vault = await api.registerService({ name: 'vault', baseUrl: 'http://vault.test', requireFreshLogin: true })
  const events = { alpha: record(agent, 'http://alpha.test'), vault: record(agent, 'http://vault.test') }
  return { app, api, alpha, vault, events }
}

const get = async (app: Awaited<ReturnType<typeof setup>>['app'], secret: string, token: string) =>
  await call(app, '/sso/get/', { token: secret, authentication_token: token })

t.test('passive sign-in, nobody signed in: no form, the service learns "login_required" once', async (t) => {
  const { app, alpha, vault, api, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const token = await obtain(app, alpha.secret, { prompt: 'none' })
  const res = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(res.statusCode, 302, 'no form')
  t.match(res.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/, 'straight back to the service')
  t.equal(res.headers['cache-control'], 'no-store')

  t.equal((await call(app, '/sso/make_used/', { token: alpha.secret, authentication_token: token })).statusCode, 404, 'nothing to redeem')
  const first = await get(app, alpha.secret, token)
  t.same([first.statusCode, first.json()], [200, { authenticated: false, reason: 'login_required' }])
  const second = await get(app, alpha.secret, token)
  t.equal(second.statusCode, 404, 'then it is spent')
  t.equal(second.json().code, 'FST_SSO_GATEWAY_INVALID_REQUEST_TOKEN')
  t.equal((await browser.request('GET', `/login/?sso=${token}`)).statusCode, 400, 'the link cannot be reused for a form')

  // Asked at once twice (a double-submitted callback): exactly one answer.
  const again = await obtain(app, alpha.secret, { prompt: 'none' })
  await browser.request('GET', `/login/?sso=${again}`)
  const both = await Promise.all([get(app, alpha.secret, again), get(app, alpha.secret, again)])
  t.same(both.map((r) => r.statusCode).sort(), [200, 404])

  // Another service presenting it burns it.
  const third = await obtain(app, alpha.secret, { prompt: 'none' })
  await browser.request('GET', `/login/?sso=${third}`)
  t.equal((await get(app, vault.secret, third)).statusCode, 404)
  t.equal((await get(app, alpha.secret, third)).statusCode, 404, 'burnt')

  await api.events.flush()
  t.same(events.alpha, [], 'nobody signed in: no event')
  t.match((await browser.request('GET', '/welcome/')).body, /Nobody is signed in/)
})

t.test('passive sign-in, signed in: silent, the user comes back', async (t) => {
  const { app, alpha } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  const token = await obtain(app, alpha.secret, { prompt: 'none' })
  const res = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(res.statusCode, 302)
  t.match(res.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.match((await get(app, alpha.secret, token)).json(), { authenticated: true, user_identy: 'alice' })
})

t.test('passive sign-in to a service that requires a fresh password: declined, never a form', async (t) => {
  const { app, alpha, vault } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  const token = await obtain(app, vault.secret, { prompt: 'none' })
  const res = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(res.statusCode, 302, 'no form')
  t.match(res.headers.location, /^http:\/\/vault\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.same((await get(app, vault.secret, token)).json(), { authenticated: false, reason: 'login_required' })
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/, 'still signed in at the gateway')
})

t.test('forced sign-in (prompt=login): the form even when signed in; the same user keeps the SSO session', async (t) => {
  const { app, alpha, api, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const first = await signInAs(app, browser, alpha.secret, 'alice')
  const before = (await get(app, alpha.secret, first.token)).json()
  t.ok(before.auth_time <= Date.now() && before.auth_time > Date.now() - 10_000, 'auth_time: when the password was entered')
  const oldCookie = [...browser.cookies.values()].join()
  await sleep(20)

  const token = await obtain(app, alpha.secret, { prompt: 'login' })
  const form = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(form.statusCode, 200, 'the form, although signed in')
  t.match(form.body, /name="password"/)
  t.match(form.body, /value="alice"/, 'the username filled in')
  const res = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 303)
  t.match(res.headers.location, /^http:\/\/alpha\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  t.not([...browser.cookies.values()].join(), oldCookie, 'a new session id')
  const after = (await get(app, alpha.secret, token)).json()
  t.equal(after.sso_session, before.sso_session, 'the same SSO session: services born from it keep working')
  t.ok(after.auth_time > before.auth_time, 'auth_time advances')
  t.equal(after.sso_session_ends_at, before.sso_session_ends_at, 'the absolute lifetime is not extended')
  t.equal((await api.listSessions('alice')).length, 1, 'still one session')

  // The silent path still carries the fresh auth_time.
  const silent = await obtain(app, alpha.secret)
  await browser.request('GET', `/login/?sso=${silent}`)
  t.equal((await get(app, alpha.secret, silent)).json().auth_time, after.auth_time)
  await api.events.flush()
  t.same(events.alpha.filter((e) => e.type === 'deauthenticate'), [], 'nobody signed out')

  // A wrong password on the forced form keeps the user signed in as before.
  const token2 = await obtain(app, alpha.secret, { prompt: 'login' })
  const form2 = await browser.request('GET', `/login/?sso=${token2}`)
  t.equal((await browser.request('POST', `/login/?sso=${token2}`, { username: 'alice', password: 'wrong', _csrf: Browser.csrf(form2.body) })).statusCode, 401)
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">alice/)
})

t.test('a service registered with requireFreshLogin always shows the form', async (t) => {
  const { app, alpha, vault } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  const token = await obtain(app, vault.secret)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(form.statusCode, 200, 'the form, although signed in')
  t.match(form.body, /vault/)
  const res = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.match(res.headers.location, /^http:\/\/vault\.test\/sso\/accept\/(\?code=[\w-]{43})?$/)
  // Not sensitive any more: silent again.
  await app.ssoGateway.updateService('vault', { requireFreshLogin: false })
  t.equal((await browser.request('GET', `/login/?sso=${await obtain(app, vault.secret)}`)).statusCode, 302)
})

t.test('a different user signing in ends the previous user\'s SSO session first', async (t) => {
  const { app, alpha, api, events } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const first = await signInAs(app, browser, alpha.secret, 'alice')
  const aliceSso = (await get(app, alpha.secret, first.token)).json().sso_session
  await api.events.flush()
  events.alpha.length = 0

  const token = await obtain(app, alpha.secret, { prompt: 'login' })
  const form = await browser.request('GET', `/login/?sso=${token}`)
  const res = await browser.request('POST', `/login/?sso=${token}`, { username: 'bob', password: PASSWORD, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 303)
  const bob = (await get(app, alpha.secret, token)).json()
  t.equal(bob.user_identy, 'bob')
  t.not(bob.sso_session, aliceSso, 'a new SSO session')
  await api.events.flush()
  t.match(events.alpha.filter((e) => e.type === 'deauthenticate'), [{ username: 'alice', sso_session: aliceSso, reason: 'logout' }],
    'alice\'s service sessions from this browser end')
  t.same(await api.listSessions('alice'), [])
  t.match((await browser.request('GET', '/welcome/')).body, /id="who">bob/)

  // The plain form (no service) also switches users.
  const plain = await browser.request('GET', '/login/')
  t.equal(plain.statusCode, 302, 'signed in: /login/ goes to the welcome page')
  t.equal(plain.headers.location, '/welcome/')
})

t.test('obtain refuses an unknown prompt', async (t) => {
  const { app, alpha } = await setup()
  t.teardown(() => app.close())
  const res = await call(app, '/sso/obtain/', { token: alpha.secret, next_url: '/x', prompt: 'consent' })
  t.equal(res.statusCode, 400)
})

t.test('two concurrent reads of a declined request: exactly one is told login_required', async (t) => {
  // A store whose reads are slow, so both calls read "declined" before either spends it.
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  const read = store.tokens.get
  store.tokens.get = async (hash, now) => {
    const token = await read(hash, now)
    await sleep(30)
    return token
  }
  // The gateway reads with getWithUser when the store has it (SQLite does): slowed the same way.
  const readWithUser = store.tokens.getWithUser
  if (readWithUser !== undefined) {
    store.tokens.getWithUser = async (hash, now) => {
      const found = await readWithUser(hash, now)
      await sleep(30)
      return found
    }
  }
  const { app } = await buildApp({ store })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const token = await obtain(app, secret, { prompt: 'none' })
  await new Browser(app).request('GET', `/login/?sso=${token}`)
  const both = await Promise.all([get(app, secret, token), get(app, secret, token)])
  t.same(both.map((r) => r.statusCode).sort(), [200, 404])
})

t.test('a session signed in by an older version (no authAt) reports its sign-in time as auth_time', async (t) => {
  const { app, alpha } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  await signInAs(app, browser, alpha.secret, 'alice')
  const db = storeOf(app).db
  const row = db.prepare('SELECT sid, data FROM gateway_sessions WHERE user_key IS NOT NULL').get() as { sid: string, data: string }
  const data = JSON.parse(row.data)
  delete data.authAt
  db.prepare('UPDATE gateway_sessions SET data = ? WHERE sid = ?').run(JSON.stringify(data), row.sid)
  const token = await obtain(app, alpha.secret)
  t.equal((await browser.request('GET', `/login/?sso=${token}`)).statusCode, 302)
  t.equal((await get(app, alpha.secret, token)).json().auth_time, data.createdAt)
})
