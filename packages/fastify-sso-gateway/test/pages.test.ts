// The gateway's pages through the page kit: a template of one's own, Russian end to end (from
// Accept-Language, and forced), messages and theme options, the not-found page option.
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import fastifySsoGateway from '../src/index.js'
import { Browser, buildApp, obtain, PASSWORD, SESSION_SECRET, signInAs } from './helpers.js'

const RU = { 'accept-language': 'ru-RU,ru;q=0.9,en;q=0.5' }

t.test('a template of your own replaces a page and can use the kit\'s layout and partials', async (t) => {
  const dir = t.testdir({
    'login.eta': "<% layout('@layout') %><h1>ACME sign-in</h1><p id=\"svc\"><%= it.serviceName %></p><form method=\"post\" action=\"<%= it.action %>\">" +
      "<input type=\"hidden\" name=\"_csrf\" value=\"<%= it.csrfToken %>\"><input name=\"username\"><input name=\"password\"></form>" +
      "<%~ include('@actions', { links: [{ href: '/help', label: it.t('common.home') }] }) %>"
  })
  const { app } = await buildApp({ templates: { login: join(dir, 'login.eta') }, theme: { css: ':root { --sso-accent: #0b6e4f; }' } })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test', displayName: 'Alpha Billing' })
  const page = await new Browser(app).request('GET', `/login/?sso=${await obtain(app, secret)}`)
  t.equal(page.statusCode, 200)
  t.match(page.body, /<h1>ACME sign-in<\/h1><p id="svc">Alpha Billing<\/p>/, 'the template, given the display name')
  t.match(page.body, /<link rel="stylesheet" href="\/sso\/style.css">/, 'inside the kit\'s layout')
  t.match(page.body, /<a class="sso-link" href="\/help">Home<\/a>/, 'with its partials')
  const css = await app.inject('/sso/style.css')
  t.match(css.body, /--sso-accent: #0b6e4f;\s*\}\s*$/, 'theme.css comes last in the stylesheet')
})

t.test('Russian from Accept-Language: the sign-in, its errors, the sessions page and sign-out', async (t) => {
  const { app, agent } = await buildApp()
  t.teardown(() => app.close())
  agent.get('http://alpha.test').intercept({ path: '/sso/event/', method: 'POST' }).reply(200, { ok: true }).persist()
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test', displayName: 'Альфа' })
  const browser = new Browser(app, RU)
  const token = await obtain(app, secret)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  t.equal(form.headers['content-language'], 'ru')
  t.match(form.headers.vary, /accept-language/)
  t.match(form.body, /<html lang="ru">/)
  t.match(form.body, /<h1>Вход<\/h1>/)
  t.match(form.body, /чтобы продолжить в Альфа/)
  t.match(form.body, /<label for="password">Пароль<\/label>/)
  const wrong = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: 'nope', _csrf: Browser.csrf(form.body) })
  t.match(wrong.body, /Неверное имя пользователя или пароль\./)
  t.notMatch(wrong.body, /Wrong username/)
  const ok = await browser.request('POST', `/login/?sso=${token}`, { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(wrong.body) })
  t.equal(ok.statusCode, 303)
  const sessions = await browser.request('GET', '/sessions/')
  t.match(sessions.body, /<h1>Ваши сеансы<\/h1>/)
  t.match(sessions.body, /Этот браузер/)
  t.match(sessions.body, />сейчас</, 'relative time in Russian (Intl)')
  const welcome = await browser.request('GET', '/welcome/')
  t.match(welcome.body, /id="logout">Выйти</)
  t.match(welcome.body, /id="logout-everywhere">Выйти везде</)
  const out = await browser.request('POST', '/logout/', { _csrf: Browser.csrf(welcome.body), scope: 'session' })
  t.match(out.body, /<h1>Вы вышли<\/h1>/)
  const invalid = await browser.request('GET', '/login/?sso=unknown')
  t.match(invalid.body, /Эта ссылка для входа больше не действует/)
  const english = await new Browser(app).request('GET', '/welcome/')
  t.match(english.body, /<html lang="en">/, 'another browser, English')
})

t.test('a forced locale, an added locale and overridden messages', async (t) => {
  const forced = await buildApp({ locale: 'ru' })
  t.teardown(() => forced.app.close())
  const page = await new Browser(forced.app, { 'accept-language': 'en-US,en' }).request('GET', '/welcome/')
  t.match(page.body, /<html lang="ru">/, 'Russian whatever the browser asks')
  t.match(page.body, /Никто не вошёл\./)

  const { app } = await buildApp({ messages: { de: { 'welcome.nobody': 'Niemand ist angemeldet.' }, en: { 'welcome.nobody': 'No one here.' } } })
  t.teardown(() => app.close())
  t.match((await new Browser(app, { 'accept-language': 'de' }).request('GET', '/welcome/')).body, /<html lang="de">[\s\S]*Niemand ist angemeldet\.[\s\S]*>Sign in</, 'an added locale, English for what it lacks')
  t.match((await new Browser(app).request('GET', '/welcome/')).body, /No one here\./, 'an overridden English text')
  await t.rejects(buildApp({ locale: 'fr' }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /locale.*en, ru/ })
  await t.rejects(buildApp({ messages: { de: { 'nope.key': 'x' } as never } }), { message: /messages\.de\.nope\.key/ })
  await t.rejects(buildApp({ theme: { name: 'x' } as never }), { message: /theme\.name/, code: 'FST_SSO_GATEWAY_INVALID_OPTION' })
  await t.rejects(buildApp({ theme: 'dark' as never }), { message: /theme/ })
  await t.rejects(buildApp({ notFoundPage: 'yes' as never }), { message: /notFoundPage/ })
})

t.test('logos: a service\'s logo from another origin is allowed by the CSP of that page only', async (t) => {
  const { app } = await buildApp({ theme: { logoUrl: 'https://brand.test/logo.svg' } })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test', logoUrl: 'https://cdn.test/alpha.png' })
  const page = await new Browser(app).request('GET', `/login/?sso=${await obtain(app, secret)}`)
  t.match(page.body, /<img class="sso-service-logo" src="https:\/\/cdn.test\/alpha.png" alt=""/)
  t.match(page.body, /<img class="sso-logo" src="https:\/\/brand.test\/logo.svg" alt=""/)
  t.match(page.headers['content-security-policy'], /img-src 'self' https:\/\/brand\.test https:\/\/cdn\.test/)
  const welcome = await new Browser(app).request('GET', '/welcome/')
  t.notMatch(welcome.headers['content-security-policy'], /cdn\.test/, 'other pages do not load it')
})

t.test('no access: the service\'s display name, a way back to it, and a way to switch account', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  await app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  await app.ssoGateway.groups.create('staff')
  const { secret } = await app.ssoGateway.registerService({ name: 'beta', baseUrl: 'http://beta.test/app', displayName: 'Beta Reports', access: { groups: ['staff'] } })
  const { res } = await signInAs(app, new Browser(app), secret, 'alice')
  t.equal(res.statusCode, 403)
  t.match(res.body, /<h1>No access to Beta Reports<\/h1>/)
  t.match(res.body, /href="http:\/\/beta\.test\/app\/" id="next-step">Back to Beta Reports</)
})

t.test('notFoundPage: a page for browsers, JSON for the rest; off by default', async (t) => {
  const off = Fastify()
  await off.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:' })
  t.teardown(() => off.close())
  t.match((await off.inject({ url: '/nope', headers: { accept: 'text/html' } })).json(), { statusCode: 404 }, 'off: the host app\'s own answer')

  const { app } = await buildApp({ notFoundPage: true })
  t.teardown(() => app.close())
  const page = await app.inject({ url: '/nope', headers: { accept: 'text/html', 'accept-language': 'ru' } })
  t.equal(page.statusCode, 404)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  t.match(page.body, /<h1>Страница не найдена<\/h1>/)
  t.match(page.body, /href="\/welcome\/" id="next-step"/)
  const api = await app.inject({ url: '/nope', headers: { accept: 'application/json' } })
  t.equal(api.statusCode, 404)
  t.same(api.json(), { error: 'Not found' })
  const bare = await app.inject({ url: '/nope' })
  t.equal(bare.statusCode, 404, 'no Accept header: the JSON answer')
  t.same(bare.json(), { error: 'Not found' })
  const twice = Fastify()
  twice.setNotFoundHandler(async () => 'mine')
  await t.rejects(async () => { await twice.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:', notFoundPage: true }).ready() },
    'an app with its own not-found handler cannot take ours too')
  await twice.close()
})

t.test('the rate limit page: friendly, with the wait, and back to the same sign-in', async (t) => {
  const { app } = await buildApp({ loginRateLimit: { max: 1, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const { secret } = await app.ssoGateway.registerService({ name: 'alpha', baseUrl: 'http://alpha.test' })
  const token = await obtain(app, secret)
  const browser = new Browser(app)
  const form = await browser.request('GET', `/login/?sso=${token}`)
  await browser.request('POST', `/login/?sso=${token}`, { username: 'x', password: 'y', _csrf: Browser.csrf(form.body) })
  const limited = await browser.request('POST', `/login/?sso=${token}`, { username: 'x', password: 'y', _csrf: Browser.csrf(form.body) })
  t.equal(limited.statusCode, 429)
  t.match(limited.body, /Wait \d+ seconds, then try again\./)
  t.notMatch(limited.body, /Rate limit exceeded/)
  t.match(limited.body, new RegExp(`href="/login/\\?sso=${token}" id="next-step">Back to sign-in<`))
})

t.test('the sessions page\'s words: device names (bowser) and relative times (Intl)', async (t) => {
  const { deviceName, relativeTime } = await import('../src/routes/sessions.js')
  const en = (await buildApp()).app
  t.teardown(() => en.close())
  const tr = (key: string, p?: Record<string, string | number>): string => key === 'sessions.browserOn' ? `${String(p?.browser)} on ${String(p?.os)}` : key
  t.equal(deviceName('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0', tr as never), 'Microsoft Edge on Windows')
  t.equal(deviceName('curl/8.5.0', tr as never), 'sessions.unknownBrowser', 'not a browser bowser knows')
  t.equal(deviceName('Mozilla/5.0 Firefox/128.0', tr as never), 'Firefox', 'a browser without an OS')
  t.equal(deviceName(null, tr as never), 'sessions.unknownBrowser')
  t.equal(deviceName('  ', tr as never), 'sessions.unknownBrowser')
  const now = Date.UTC(2026, 0, 10, 12)
  t.equal(relativeTime(now - 10_000, now, 'en'), 'now')
  t.equal(relativeTime(now + 5000, now, 'en'), 'now', 'a clock a little ahead')
  t.equal(relativeTime(now - 5 * 60_000, now, 'en'), '5 minutes ago')
  t.equal(relativeTime(now - 86_400_000, now, 'en'), 'yesterday')
  t.equal(relativeTime(now - 3 * 3_600_000, now, 'ru'), '3 часа назад')
})
