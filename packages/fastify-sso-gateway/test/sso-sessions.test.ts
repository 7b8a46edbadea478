import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { gatewayBehind } from '../src/facade.js'
import { SqliteGatewayStore } from '../src/index.js'
import { Browser, buildApp, call, logLines, PASSWORD, record, signInAs, sleep, ssoOf, storeOf } from './helpers.js'

async function setup (options: Parameters<typeof buildApp>[0] = {}, server = {}) {
  const { app, agent } = await buildApp(options, server)
  const api = app.ssoGateway
  await api.createUser({ username: 'alice', password: PASSWORD })
  await api.createUser({ username: 'bob', password: PASSWORD })
  const alpha = await api.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const beta = await api.registerService({ name: 'beta', baseUrl: 'http://beta.test' })
  const events = { alpha: record(agent, 'http://alpha.test'), beta: record(agent, 'http://beta.test') }
  return { app, api, alpha, beta, events }
}

const signedInAs = async (browser: Browser): Promise<string | null> =>
  /<strong id="who">([^<]+)/.exec((await browser.request('GET', '/welcome/')).body)?.[1] ?? null

const deauths = (events: Array<Record<string, unknown>>) => events.filter((e) => e.type === 'deauthenticate')

t.test('listSessions: device, address, times and services reached; revokeSession and revokeOtherSessions', async (t) => {
  const { app, api, alpha, beta, events } = await setup()
  t.teardown(() => app.close())
  const laptop = new Browser(app, { 'user-agent': 'Laptop Firefox' })
  const phone = new Browser(app, { 'user-agent': 'Phone Safari' })
  const before = Date.now()
  const laptopSso = await ssoOf(app, alpha.secret, (await signInAs(app, laptop, alpha.secret, 'alice')).token)
  const phoneSso = await ssoOf(app, alpha.secret, (await signInAs(app, phone, alpha.secret, 'alice')).token)
  t.equal((await laptop.request('GET', `/login/?sso=${await (await import('./helpers.js')).obtain(app, beta.secret)}`)).statusCode, 302, 'laptop reaches beta silently')

  const list = await api.listSessions('Alice')
  t.equal(list.length, 2)
  const byId = new Map(list.map((s) => [s.id, s]))
  t.match(byId.get(laptopSso), { userAgent: 'Laptop Firefox', ip: '127.0.0.1', services: ['alpha', 'beta'] })
  t.match(byId.get(phoneSso), { userAgent: 'Phone Safari', ip: '127.0.0.1', services: ['alpha'] })
  t.ok(list.every((s) => s.createdAt >= before && s.lastSeenAt >= s.createdAt), 'times')
  t.same(await api.listSessions('bob'), [], 'bob has none')
  await t.rejects(api.listSessions('nobody'), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })

  await api.events.flush()
  events.alpha.length = 0
  events.beta.length = 0
  t.equal(await api.revokeSession('alice', laptopSso), true)
  t.equal(await signedInAs(laptop), null, 'the laptop is signed out')
  t.equal(await signedInAs(phone), 'alice', 'the phone is not')
  await api.events.flush()
  t.match(deauths(events.alpha), [{ username: 'alice', sso_session: laptopSso, reason: 'revoked' }])
  t.match(deauths(events.beta), [{ sso_session: laptopSso, reason: 'revoked' }], 'every service that session reached')
  t.equal(await api.revokeSession('alice', laptopSso), false, 'not live any more')
  t.equal(await api.revokeSession('alice', 'sso_unknown'), false, 'unknown')
  t.equal(await api.revokeSession('bob', phoneSso), false, 'someone else\'s session')
  t.equal(await signedInAs(phone), 'alice', 'still signed in')
  await t.rejects(api.revokeSession('nobody', phoneSso), { code: 'FST_SSO_GATEWAY_USER_NOT_FOUND' })

  const third = new Browser(app)
  await signInAs(app, third, alpha.secret, 'alice')
  t.equal(await api.revokeOtherSessions('alice', phoneSso), 1)
  t.equal(await signedInAs(third), null)
  t.equal(await signedInAs(phone), 'alice')
  t.equal(await api.revokeOtherSessions('alice', phoneSso), 0)
  await api.events.flush()
  t.equal(deauths(events.beta).length, 1, 'beta was not reached by the others: told once only')
})

/** A session with a CSRF token but nobody signed in (the anonymous sign-in form). */
async function anonymousCsrf (browser: Browser): Promise<string> {
  return Browser.csrf((await browser.request('GET', '/login/')).body)
}

t.test('the /sessions/ page: see, end one, end all others (POST with CSRF)', async (t) => {
  const { app, alpha, events, api } = await setup()
  t.teardown(() => app.close())
  const anon = new Browser(app)
  const page0 = await anon.request('GET', '/sessions/')
  t.equal(page0.statusCode, 302)
  t.equal(page0.headers.location, '/login/', 'nobody signed in: to the sign-in form')
  const csrf0 = await anonymousCsrf(anon)
  for (const url of ['/sessions/revoke', '/sessions/revoke-others']) {
    const res = await anon.request('POST', url, { _csrf: csrf0, session: 'sso_x' })
    t.equal(res.statusCode, 303)
    t.equal(res.headers.location, '/login/')
  }

  const laptop = new Browser(app, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' })
  const phone = new Browser(app, { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1' })
  const tablet = new Browser(app)
  const laptopSso = await ssoOf(app, alpha.secret, (await signInAs(app, laptop, alpha.secret, 'alice')).token)
  const phoneSso = await ssoOf(app, alpha.secret, (await signInAs(app, phone, alpha.secret, 'alice')).token)
  await signInAs(app, tablet, alpha.secret, 'alice')
  await signInAs(app, new Browser(app), alpha.secret, 'bob')

  const page = await phone.request('GET', '/sessions/')
  t.equal(page.statusCode, 200)
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.body, /Signed in as alice\./)
  t.match(page.body, />Firefox on Linux</, 'browser and OS, not the raw User-Agent')
  t.notMatch(page.body, /Gecko\/20100101/)
  t.match(page.body, new RegExp(`class="sso-session sso-session-current" data-session="${phoneSso}">\\s*<div class="sso-session-info">\\s*<h2 id="session-0">Safari on iOS <span class="sso-badge">This browser</span></h2>`),
    'this browser first, marked')
  t.match(page.body, />Unknown browser</, 'no User-Agent')
  t.match(page.body, /<dt>Applications<\/dt><dd>alpha<\/dd>/)
  t.match(page.body, /<dt>Address<\/dt><dd>127\.0\.0\.1<\/dd>/)
  t.match(page.body, /<time datetime="\d{4}-\d\d-\d\dT[^"]+">now<\/time>/, 'relative times (Intl), with the exact time in datetime')
  t.equal((page.body.match(/<form method="post" action="\/sessions\/revoke" class="sso-button-form">/g) ?? []).length, 2, 'an end button for each other session')
  t.match(page.body, /<li class="sso-session" data-session="[^"]+">[\s\S]*?<h2 id="session-1">[\s\S]*?<button type="submit" class="sso-button sso-button-danger" aria-describedby="session-1">End this session<\/button>[\s\S]*?<\/li>/,
    'each button inside its own row, named by the row, styled as destructive')
  t.match(page.body, /id="revoke-others"/)
  t.notMatch(page.body, /bob/, 'only this user\'s sessions')
  const csrf = Browser.csrf(page.body)

  t.equal((await phone.request('POST', '/sessions/revoke', { session: laptopSso })).statusCode, 403, 'no CSRF: refused')
  t.equal(await signedInAs(laptop), 'alice')
  t.equal((await phone.request('POST', '/sessions/revoke', { _csrf: csrf, session: '' })).statusCode, 400, 'bad input: a clear error')

  const revoked = await phone.request('POST', '/sessions/revoke', { _csrf: csrf, session: laptopSso })
  t.equal(revoked.statusCode, 303)
  t.equal(revoked.headers.location, '/sessions/')
  t.equal(await signedInAs(laptop), null, 'the laptop is signed out')
  await api.events.flush()
  t.match(deauths(events.alpha), [{ sso_session: laptopSso, reason: 'revoked' }])

  // The current session is not ended through this form (that is /logout/), and a foreign id does nothing.
  await phone.request('POST', '/sessions/revoke', { _csrf: csrf, session: phoneSso })
  await phone.request('POST', '/sessions/revoke', { _csrf: csrf, session: 'sso_unknown' })
  t.equal(await signedInAs(phone), 'alice')
  t.equal(await signedInAs(tablet), 'alice')

  const others = await phone.request('POST', '/sessions/revoke-others', { _csrf: csrf })
  t.equal(others.statusCode, 303)
  t.equal(others.headers.location, '/sessions/')
  t.equal(await signedInAs(tablet), null)
  t.equal(await signedInAs(phone), 'alice')
  const after = await phone.request('GET', '/sessions/')
  t.equal((after.body.match(/class="sso-session[ "]/g) ?? []).length, 1)
  t.notMatch(after.body, /id="revoke-others"/, 'nothing else to sign out')
})

t.test('a service ends one SSO session with deauthenticate + sso_session', async (t) => {
  const { app, alpha, beta, events, api } = await setup()
  t.teardown(() => app.close())
  const laptop = new Browser(app)
  const phone = new Browser(app)
  const laptopSso = await ssoOf(app, alpha.secret, (await signInAs(app, laptop, alpha.secret, 'alice')).token)
  const phoneSso = await ssoOf(app, beta.secret, (await signInAs(app, phone, beta.secret, 'alice')).token)
  await signInAs(app, new Browser(app), alpha.secret, 'bob')
  await api.events.flush()
  events.alpha.length = 0
  events.beta.length = 0

  // beta knows alice, but the laptop's session never reached beta: harmless, nothing ends.
  let res = await call(app, '/sso/deauthenticate/', { token: beta.secret, user_identy: 'alice', sso_session: laptopSso })
  t.same([res.statusCode, res.json()], [200, { ok: true }])
  t.equal(await signedInAs(laptop), 'alice')
  // alpha asks about bob with alice's session: not his, nothing ends.
  res = await call(app, '/sso/deauthenticate/', { token: alpha.secret, user_identy: 'bob', sso_session: laptopSso })
  t.same([res.statusCode, res.json()], [200, { ok: true }])
  t.equal(await signedInAs(laptop), 'alice')
  res = await call(app, '/sso/deauthenticate/', { token: alpha.secret, user_identy: 'alice', sso_session: 'sso_unknown' })
  t.equal(res.statusCode, 200)

  res = await call(app, '/sso/deauthenticate', { token: alpha.secret, user_identy: 'alice', sso_session: laptopSso })
  t.same([res.statusCode, res.json()], [200, { ok: true }])
  t.equal(await signedInAs(laptop), null, 'that browser is signed out')
  t.equal(await signedInAs(phone), 'alice', 'the other device is not')
  await api.events.flush()
  t.match(events.alpha, [{ type: 'deauthenticate', username: 'alice', sso_session: laptopSso, reason: 'logout' }])
  t.same(events.beta, [], 'beta was never reached by that session')
  res = await call(app, '/sso/deauthenticate/', { token: alpha.secret, user_identy: 'alice', sso_session: laptopSso })
  t.same([res.statusCode, res.json()], [200, { ok: true }], 'repeating it is harmless')
  t.ok(phoneSso.startsWith('sso_'))
})

/** Rewrites the stored gateway sessions' data (no clock option exists). */
function age (app: FastifyInstance, change: (data: Record<string, number>) => void): void {
  const db = storeOf(app).db
  const rows = db.prepare('SELECT sid, data FROM gateway_sessions WHERE user_key IS NOT NULL').all() as Array<{ sid: string, data: string }>
  for (const row of rows) {
    const data = JSON.parse(row.data)
    change(data)
    db.prepare('UPDATE gateway_sessions SET data = ? WHERE sid = ?').run(JSON.stringify(data), row.sid)
  }
}

t.test('an expired session met by the browser ends at the services it reached', async (t) => {
  const { app, alpha, events, api } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const sso = await ssoOf(app, alpha.secret, (await signInAs(app, browser, alpha.secret, 'alice')).token)
  await api.events.flush()
  events.alpha.length = 0
  age(app, (d) => { d.seenAt! -= 31 * 60_000; d.createdAt! -= 31 * 60_000 })
  t.equal(await signedInAs(browser), null)
  await api.events.flush()
  t.match(events.alpha, [{ type: 'deauthenticate', username: 'alice', sso_session: sso, reason: 'expired' }])
  t.same(await api.listSessions('alice'), [])
})

t.test('housekeeping ends SSO sessions that expired unused, at every service they reached', async (t) => {
  const { app, alpha, beta, events, api } = await setup({ idleTimeout: 1000, absoluteTimeout: 60_000, housekeepingInterval: 100 })
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const sso = await ssoOf(app, alpha.secret, (await signInAs(app, browser, alpha.secret, 'alice')).token)
  await browser.request('GET', `/login/?sso=${await (await import('./helpers.js')).obtain(app, beta.secret)}`)
  await new Browser(app).request('GET', '/login/') // an anonymous session (no user): expires quietly
  await api.events.flush()
  events.alpha.length = 0
  events.beta.length = 0
  const deadline = Date.now() + 5000
  while (deauths(events.alpha).length === 0 && Date.now() < deadline) {
    await sleep(100)
    await api.events.flush()
  }
  t.match(deauths(events.alpha), [{ username: 'alice', sso_session: sso, reason: 'expired' }], 'alpha is told')
  await sleep(200)
  await api.events.flush()
  t.match(deauths(events.beta), [{ username: 'alice', sso_session: sso, reason: 'expired' }], 'beta is told')
  t.equal(deauths(events.alpha).length, 1, 'once')
  t.equal(await signedInAs(browser), null)
  // An SSO session whose user is gone by then ends quietly.
  await gatewayBehind(api).expireSsoSession('usr_gone', 'sso_gone')
})

t.test('an expired session read by the browser before the sweep still ends at the services', async (t) => {
  const { app, alpha, events, api } = await setup({ idleTimeout: 1000, absoluteTimeout: 60_000, housekeepingInterval: 1500 })
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const sso = await ssoOf(app, alpha.secret, (await signInAs(app, browser, alpha.secret, 'alice')).token)
  await api.events.flush()
  events.alpha.length = 0
  await sleep(1100)
  t.equal(await signedInAs(browser), null, 'expired')
  const deadline = Date.now() + 4000
  while (deauths(events.alpha).length === 0 && Date.now() < deadline) {
    await sleep(100)
    await api.events.flush()
  }
  t.match(deauths(events.alpha), [{ username: 'alice', sso_session: sso, reason: 'expired' }])
})

t.test('a failing housekeeping run is logged and retried', async (t) => {
  const store = Object.assign(new SqliteGatewayStore({ filename: ':memory:' }), { failures: 1 })
  const prune = store.tokens.prune
  store.tokens.prune = async (now) => {
    if (store.failures-- > 0) throw new Error('disk on fire')
    return await prune(now)
  }
  const log = logLines()
  const { app } = await setup({ store, housekeepingInterval: 100 }, log.server)
  t.teardown(() => app.close())
  const deadline = Date.now() + 3000
  while (store.failures >= 0 && Date.now() < deadline) await sleep(50)
  t.match(log.lines.find((l) => l.msg === 'sso gateway housekeeping failed'), { level: 40, err: { message: 'disk on fire' } })
})

t.test('sessions from an older version (no device fields) and a browser that sends no user agent are still listed', async (t) => {
  const { app, alpha, api } = await setup()
  t.teardown(() => app.close())
  // A real HTTP client that sends no User-Agent header (inject always adds one).
  const { request } = await import('node:http')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const token = (await call(app, '/sso/obtain/', { token: alpha.secret, next_url: '/' })).json().token as string
  const raw = async (method: string, path: string, headers: Record<string, string>, body?: string) =>
    await new Promise<{ status: number, headers: Record<string, unknown>, body: string }>((resolve, reject) => {
      const req = request(`${base}${path}`, { method, headers }, (res) => {
        let data = ''
        res.on('data', (c) => { data += String(c) })
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data }))
      })
      req.on('error', reject)
      req.end(body)
    })
  const form = await raw('GET', `/login/?sso=${token}`, {})
  const cookie = String((form.headers['set-cookie'] as string[])[0]).split(';')[0]!
  const post = await raw('POST', `/login/?sso=${token}`, { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ username: 'alice', password: PASSWORD, _csrf: Browser.csrf(form.body) }).toString())
  t.equal(post.status, 303)
  t.match(await api.listSessions('alice'), [{ userAgent: '', ip: '127.0.0.1', services: ['alpha'] }])

  // The stored session loses the fields an older version did not write; a reached service is unknown.
  const db = storeOf(app).db
  age(app, (d) => { delete d.ua; delete d.ip; delete d.seenAt; delete d.createdAt })
  const sso = (await api.listSessions('alice'))[0]!.id
  db.prepare('INSERT INTO sso_session_services (sso_session, service_id, user_id, last_at) VALUES (?, ?, ?, ?)')
    .run(sso, 'svc_gone', (await api.getUser('alice'))!.id, Date.now() + 1)
  t.same(await api.listSessions('alice'), [{ id: sso, createdAt: 0, lastSeenAt: 0, userAgent: null, ip: null, services: ['alpha', 'svc_gone'] }])
  // A gateway session from before SSO sessions existed has nothing to list.
  age(app, (d) => { delete d.sso })
  t.same(await api.listSessions('alice'), [])
})

t.test('the /sessions/ page shows a reached service whose record is gone by its id', async (t) => {
  const { app, alpha, api } = await setup()
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const sso = await ssoOf(app, alpha.secret, (await signInAs(app, browser, alpha.secret, 'alice')).token)
  // The service's row removed by hand: its id is all the gateway still knows.
  storeOf(app).db.prepare('INSERT INTO sso_session_services (sso_session, service_id, user_id, last_at) VALUES (?, ?, ?, ?)')
    .run(sso, 'svc_gone', (await api.getUser('alice'))!.id, Date.now() + 1)
  const page = await browser.request('GET', '/sessions/')
  t.equal(page.statusCode, 200)
  t.match(page.body, /alpha/)
  t.match(page.body, /svc_gone/, 'listed by its id, not dropped')
})
