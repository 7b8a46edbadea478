import Fastify from 'fastify'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import fastifySsoGateway, { errors, OWASP_MINIMUM, RETRY_SCHEDULE, SqliteGatewayStore } from '../src/index.js'
import { Browser, buildApp, PASSWORD, SESSION_SECRET } from './helpers.js'

async function register (options: unknown): Promise<void> {
  const app = Fastify()
  try {
    await app.register(fastifySsoGateway, options as never)
    await app.ready()
  } finally {
    await app.close()
  }
}

const base = { sessionSecret: SESSION_SECRET, database: ':memory:' }

t.test('every bad option makes ready() reject, naming the option and the value', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['sessionSecret', { ...base, sessionSecret: 'too short' }, /sessionSecret.*\(got <redacted string of 9 characters>\)/],
    ['sessionSecret', { ...base, sessionSecret: [] }, /sessionSecret.*\(got <redacted array of 0>\)/],
    ['sessionSecret', { ...base, sessionSecret: [SESSION_SECRET, 'short'] }, /sessionSecret/],
    ['database', { ...base, database: '' }, /Invalid option database: must be a file path, ":memory:" or a postgres:\/\/ URL \(got ""\)/],
    ['database', { ...base, database: 'postgres://u:pw@/' }, /Invalid option database: must be a PostgreSQL URL like .* \(got "postgres:\/\/u:\*\*\*@\/"\)/],
    ['database', { ...base, database: 'postgres://u:p@ss@/x?sslmode=require&password=pw2' }, /\(got "postgres:\/\/u:\*\*\*@\/x\?sslmode=require&password=\*\*\*"\)/],
    ['database', { ...base, database: 42 }, /database.*\(got 42\)/],
    ['store', { ...base, store: 'sqlite' }, /Invalid option store: must implement the GatewayStore interface.*\(got "string"\)/],
    ['store', { ...base, store: null }, /store.*\(got "object"\)/],
    ['store', { ...base, store: { createSessionStore () {} } }, /store: must implement the GatewayStore interface \(no close\)/],
    ['store', { ...base, store: { close () {}, users: {} } }, /store: must implement the GatewayStore interface \(no users\.create\)/],
    ['store', { ...base, store: { consumeRequestToken () {} } }, /store/],
    ['busyTimeout', { ...base, busyTimeout: -1 }, /Invalid option busyTimeout: must be a whole number of milliseconds from 0 up to a year \(got -1\)/],
    ['cookieName', { ...base, cookieName: 'bad name;' }, /Invalid option cookieName: must be a cookie name token.*\(got "bad name;"\)/],
    ['cookieName', { ...base, cookieName: 7 }, /cookieName.*\(got 7\)/],
    ['cookieSecure', { ...base, cookieSecure: 'yes' }, /Invalid option cookieSecure: must be true, false or "auto" \(got "yes"\)/],
    ['idleTimeout', { ...base, idleTimeout: 999 }, /Invalid option idleTimeout: must be a whole number of milliseconds from 1000 up to a year \(got 999\)/],
    ['idleTimeout', { ...base, idleTimeout: 1500.5 }, /idleTimeout.*\(got 1500.5\)/],
    ['idleTimeout', { ...base, idleTimeout: '30m' }, /idleTimeout.*\(got "30m"\)/],
    ['idleTimeout', { ...base, idleTimeout: 10n }, /idleTimeout.*\(got 10\)/],
    ['absoluteTimeout', { ...base, absoluteTimeout: 367 * 86_400_000 }, /absoluteTimeout.*up to a year/],
    ['absoluteTimeout', { ...base, idleTimeout: 60_000, absoluteTimeout: 30_000 }, /Invalid option absoluteTimeout: must not be shorter than idleTimeout \(60000\) \(got 30000\)/],
    ['pendingTokenTtl', { ...base, pendingTokenTtl: 0 }, /pendingTokenTtl.*\(got 0\)/],
    ['authenticatedTokenTtl', { ...base, authenticatedTokenTtl: null }, /authenticatedTokenTtl.*\(got null\)/],
    ['passwordHash', { ...base, passwordHash: 'fast' }, /Invalid option passwordHash: must be \{ memoryCost, timeCost, parallelism \} \(got "fast"\)/],
    ['passwordHash.memoryCost', { ...base, passwordHash: { memoryCost: 4096 } }, /Invalid option passwordHash.memoryCost: must be a whole number of at least 19456 \(OWASP minimum for argon2id\) \(got 4096\)/],
    ['passwordHash.timeCost', { ...base, passwordHash: { timeCost: 1 } }, /passwordHash.timeCost.*at least 2.*\(got 1\)/],
    ['passwordHash.parallelism', { ...base, passwordHash: { parallelism: '1' } }, /passwordHash.parallelism.*\(got "1"\)/],
    ['eventTimeout', { ...base, eventTimeout: 50 }, /eventTimeout: must be a whole number of milliseconds from 100/],
    ['inlineEventTimeout', { ...base, inlineEventTimeout: -5 }, /inlineEventTimeout.*from 0/],
    ['outboxInterval', { ...base, outboxInterval: 5 }, /outboxInterval.*from 10/],
    ['retrySchedule', { ...base, retrySchedule: [] }, /Invalid option retrySchedule: must be a list of 1 to 100 delays, each a whole number of milliseconds up to a week \(got \[\]\)/],
    ['retrySchedule', { ...base, retrySchedule: '5s' }, /retrySchedule.*\(got "5s"\)/],
    ['retrySchedule', { ...base, retrySchedule: [200, -1] }, /retrySchedule/],
    ['retrySchedule', { ...base, retrySchedule: [1.5] }, /retrySchedule/],
    ['retrySchedule', { ...base, retrySchedule: [8 * 86_400_000] }, /retrySchedule/],
    ['retrySchedule', { ...base, retrySchedule: new Array(101).fill(1) }, /retrySchedule/],
    ['dispatcher', { ...base, dispatcher: 'agent' }, /Invalid option dispatcher: must be an undici Dispatcher \(got "string"\)/],
    ['dispatcher', { ...base, dispatcher: null }, /dispatcher/],
    ['dispatcher', { ...base, dispatcher: {} }, /dispatcher/],
    ['title', { ...base, title: '' }, /Invalid option title: must be a string of 1 to 100 characters \(got ""\)/],
    ['title', { ...base, title: 'x'.repeat(101) }, /title/],
    ['templates', { ...base, templates: 'login.eta' }, /Invalid option templates: must be an object of file paths/],
    ['templates.signup', { ...base, templates: { signup: '/x.eta' } }, /Invalid option templates.signup: is not an option \(known options: login, message, welcome, sessions\)/],
    ['templates.login', { ...base, templates: { login: '/does/not/exist.eta' } }, /Invalid option templates.login: must be the path of an existing eta file \(got "\/does\/not\/exist.eta"\)/],
    ['templates.login', { ...base, templates: { login: 42 } }, /templates.login/],
    ['obtainRateLimit', { ...base, obtainRateLimit: 100 }, /Invalid option obtainRateLimit: must be \{ max, timeWindow \} \(got 100\)/],
    ['obtainRateLimit', { ...base, obtainRateLimit: null }, /obtainRateLimit/],
    ['obtainRateLimit.max', { ...base, obtainRateLimit: { max: 0, timeWindow: 1000 } }, /Invalid option obtainRateLimit.max: must be a positive whole number \(got 0\)/],
    ['loginRateLimit.max', { ...base, loginRateLimit: { max: '5', timeWindow: 1000 } }, /loginRateLimit.max/],
    ['loginRateLimit.timeWindow', { ...base, loginRateLimit: { max: 5, timeWindow: 0.5 } }, /Invalid option loginRateLimit.timeWindow: must be a positive number of milliseconds \(got 0.5\)/],
    ['loginRateLimit.timeWindow', { ...base, loginRateLimit: { max: 5 } }, /loginRateLimit.timeWindow.*\(got undefined\)/]
  ]
  for (const [name, options, message] of cases) {
    await t.rejects(register(options), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message }, name)
  }
  t.ok(new errors.INVALID_OPTION('x', 'y') instanceof TypeError)
  const { resolveOptions } = await import('../src/options.js')
  t.throws(() => resolveOptions(null), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /Invalid option options: must be an object \(got null\)/ })
  t.throws(() => resolveOptions('x'), { message: /options: must be an object \(got "x"\)/ })
})

t.test('a secret is never shown in the error', async (t) => {
  const secret = 'hunter2-but-only-this-long'
  const err = await register({ ...base, sessionSecret: secret }).catch((e: Error) => e)
  t.notMatch((err as Error).message, secret)
})

t.test('defaults: cookie name, HttpOnly Lax cookie, an array of secrets', async (t) => {
  const app = Fastify()
  await app.register(fastifySsoGateway, { sessionSecret: [SESSION_SECRET, 'an-older-secret-still-verifying-cookies!'], database: ':memory:' })
  await app.ready()
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  // The form stores nothing: its CSRF token is bound to a form cookie, Secure ('auto') only over HTTPS.
  const page = await app.inject('/login/')
  const form = page.cookies.find((c) => c.name === 'sso_gateway_session_form')
  t.ok(form, 'over plain HTTP: a plain form cookie')
  t.same([form?.secure, form?.httpOnly, form?.sameSite, form?.path], [undefined, true, 'Lax', '/'])
  t.notOk(page.cookies.some((c) => c.name === 'sso_gateway_session'), 'no session for an anonymous form')
  const signIn = await app.inject({
    method: 'POST',
    url: '/login/',
    headers: { cookie: `${form?.name}=${form?.value}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: 'alice', password: PASSWORD, _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '' }).toString()
  })
  t.equal(signIn.statusCode, 303)
  const cookie = signIn.cookies.find((c) => c.name === 'sso_gateway_session')
  t.ok(cookie, 'default cookie name')
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Lax')
  t.ok((cookie?.maxAge ?? 0) <= 43_200, 'the cookie lasts no longer than the absolute timeout')
  t.match(page.body, /<title>Sign in · Single sign-on<\/title>/)
  await app.close()
})

t.test('cookieSecure \'auto\' (default): over HTTPS the form cookie is Secure and __Host- (no sibling subdomain can set it)', async (t) => {
  const app = Fastify({ trustProxy: true })
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:' })
  t.teardown(async () => { await app.close() })
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  const page = await app.inject({ url: '/login/', headers: { 'x-forwarded-proto': 'https' } })
  const form = page.cookies.find((c) => c.name === '__Host-sso_gateway_session_form')
  t.same([form?.secure, form?.httpOnly, form?.sameSite, form?.path], [true, true, 'Lax', '/'])
  const signIn = await app.inject({
    method: 'POST',
    url: '/login/',
    headers: { 'x-forwarded-proto': 'https', cookie: `${form?.name}=${form?.value}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username: 'alice', password: PASSWORD, _csrf: /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '' }).toString()
  })
  t.equal(signIn.statusCode, 303)
  t.equal(signIn.cookies.find((c) => c.name === 'sso_gateway_session')?.secure, true)
  t.match(signIn.cookies.find((c) => c.name === '__Host-sso_gateway_session_form'), { value: '', secure: true }, 'the form cookie is dropped')
})

t.test('unknown or misspelt options are refused with the nearest name; Fastify\'s register keys are allowed', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...base, idleTimout: 60_000 }, /^Invalid option idleTimout: is not an option; did you mean "idleTimeout"\?$/],
    [{ ...base, sessionsecret: SESSION_SECRET }, /did you mean "sessionSecret"\?/],
    [{ ...base, databse: 'x.sqlite' }, /Invalid option databse: .*did you mean "database"\?/],
    [{ ...base, colour: 'blue' }, /Invalid option colour: is not an option \(known options: sessionSecret, database, store,/],
    [{ ...base, passwordHash: { memoryCost: 19456, timecost: 3 } }, /Invalid option passwordHash.timecost: is not an option; did you mean "timeCost"\?/],
    [{ ...base, loginRateLimit: { max: 5, timeWindow: 1000, window: 5 } }, /Invalid option loginRateLimit.window: is not an option \(known options: max, timeWindow\)/],
    [{ ...base, templates: { logn: '/x.eta' } }, /Invalid option templates.logn: is not an option; did you mean "login"\?/],
    [{ ...base, passwordHash: { prefix: '/x' } }, /passwordHash.prefix: is not an option/]
  ]
  for (const [options, message] of cases) {
    await t.rejects(register(options), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message }, String(message))
  }
  const app = Fastify()
  await app.register(fastifySsoGateway, { ...base, prefix: '/sso-admin', logLevel: 'warn', logSerializers: {} } as never)
  await app.ready()
  t.ok(app.hasDecorator('ssoGateway'), 'prefix, logLevel and logSerializers pass')
  await app.close()
})

t.test('a secret is never shown in an option error, whatever its type', async (t) => {
  const values: unknown[] = [
    'hunter2-short',
    ['hunter2-short'],
    [SESSION_SECRET, 'hunter2-short'],
    Buffer.from('hunter2-in-a-buffer-of-more-than-32-bytes'),
    { secret: 'hunter2' },
    new Map([['k', 'hunter2']]),
    12345678
  ]
  for (const value of values) {
    const err = await register({ ...base, sessionSecret: value }).catch((e: Error) => e) as Error & { code: string }
    t.equal(err.code, 'FST_SSO_GATEWAY_INVALID_OPTION')
    t.match(err.message, /^Invalid option sessionSecret: .*\(got <redacted [^>]+>\)$/)
    t.notMatch(err.message, /hunter2|aHVudGVy|104,117|12345678/, err.message)
  }
})

t.test('a database that cannot be opened: a coded option error naming the path', async (t) => {
  const missing = join(t.testdir({}), 'no', 'such', 'folder', 'gateway.sqlite')
  const err = await register({ sessionSecret: SESSION_SECRET, database: missing }).catch((e: Error) => e) as Error & { code: string, cause: unknown }
  t.equal(err.code, 'FST_SSO_GATEWAY_INVALID_OPTION')
  t.match(err.message, `Invalid option database: cannot open the SQLite file ${JSON.stringify(missing)}`)
  t.match(err.message, /does its folder exist/)
  t.type(err.cause, Error, 'the driver\'s error is kept as the cause')
  const notDb = join(t.testdir({ 'notes.sqlite': 'this is a text file, not a database'.repeat(100) }), 'notes.sqlite')
  await t.rejects(register({ sessionSecret: SESSION_SECRET, database: notDb }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /database: cannot open the SQLite file .*notes\.sqlite/ })
})

t.test('cookieName, title and custom templates are used', async (t) => {
  const dir = t.testdir({
    'login.eta': '<p>custom login for <%= it.title %> <%= it.serviceName %></p><input name="_csrf" value="<%= it.csrfToken %>">',
    'message.eta': '<p>custom message: <%= it.heading %></p>',
    'welcome.eta': '<p>custom welcome: <%= it.user ? it.user.username : "nobody" %></p>'
  })
  const { app } = await buildApp({
    cookieName: 'my_sso',
    title: 'ACME <SSO>',
    templates: { login: join(dir, 'login.eta'), message: join(dir, 'message.eta'), welcome: join(dir, 'welcome.eta') }
  })
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const login = await browser.request('GET', '/login/')
  t.match(login.body, /custom login for ACME &lt;SSO&gt;/)
  t.ok(browser.cookies.has('my_sso_form'), 'the form cookie is named after cookieName')
  t.match((await browser.request('GET', '/welcome/')).body, /custom welcome: nobody/)
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(login.body) })
  t.ok(browser.cookies.has('my_sso'), 'the session cookie is named cookieName')
  t.match((await browser.request('GET', '/login/?sso=nope')).body, /custom message: This sign-in link is no longer valid/)
})

t.test('a store passed as an option is used and closed', async (t) => {
  const store = new SqliteGatewayStore({ filename: ':memory:' })
  const { app } = await buildApp({ store })
  await app.ssoGateway.createUser({ username: 'alice' })
  t.ok(await store.users.byUsername('alice'), 'the user is in the given store')
  await app.close()
  t.notOk(store.db.open, 'closed with the app')
})

t.test('options are frozen with defaults filled in', async (t) => {
  const { resolveOptions } = await import('../src/options.js')
  const o = resolveOptions({ sessionSecret: SESSION_SECRET })
  t.ok(Object.isFrozen(o))
  t.match(o, {
    database: 'sso-gateway.sqlite',
    busyTimeout: 5000,
    cookieName: 'sso_gateway_session',
    idleTimeout: 1_800_000,
    absoluteTimeout: 43_200_000,
    pendingTokenTtl: 600_000,
    authenticatedTokenTtl: 120_000,
    passwordHash: OWASP_MINIMUM,
    eventTimeout: 10_000,
    inlineEventTimeout: 3000,
    outboxInterval: 1000,
    retrySchedule: RETRY_SCHEDULE,
    title: 'Single sign-on',
    pages: { templates: {}, locale: null, messages: {}, theme: { name: 'Single sign-on', logoUrl: null, css: '' } },
    notFoundPage: false,
    obtainRateLimit: { max: 3000, timeWindow: 60_000 },
    loginRateLimit: { max: 30, timeWindow: 60_000 },
    minPasswordLength: 15,
    secretsKey: []
  })
  t.same(resolveOptions({ sessionSecret: SESSION_SECRET, passwordHash: { timeCost: 3 } }).passwordHash, { ...OWASP_MINIMUM, timeCost: 3 })
  const schedule = [200, 400]
  const custom = resolveOptions({ sessionSecret: SESSION_SECRET, retrySchedule: schedule }).retrySchedule
  t.same(custom, [200, 400])
  t.ok(Object.isFrozen(custom) && custom !== schedule, 'a frozen copy')
})

t.test('a template file is read at register', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'login.eta')
  writeFileSync(file, '<p>v1 <input name="_csrf" value="<%= it.csrfToken %>"></p>')
  const { app } = await buildApp({ templates: { login: file } })
  t.teardown(() => app.close())
  writeFileSync(file, '<p>v2</p>')
  t.match((await app.inject('/login/')).body, /v1/, 'compiled once: a later edit needs a restart')
})
