// The service plugin's pages through the page kit: a template of one's own, Russian end to end
// (from Accept-Language, and forced), theme, the stylesheet and the not-found page option.
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import fastifySsoService from '../src/index.js'
import { Browser, buildApp, csrfOf, GATEWAY, SERVICE_TOKEN, SESSION_SECRET, SIGNING_SECRET, signIn } from './helpers.js'

const RU = { 'accept-language': 'ru-RU,ru;q=0.9,en;q=0.5' }

t.test('a template of your own replaces a page, inside the kit\'s layout', async (t) => {
  const dir = t.testdir({
    'signedOut.eta': "<% layout('@layout') %><h1 id=\"mine\"><%= it.heading %></h1><p><%= it.scope %>: <%= it.text %></p><%~ include('@actions', { links: it.links }) %>"
  })
  const { app } = await buildApp(t, { templates: { signedOut: join(dir, 'signedOut.eta') }, theme: { name: 'Billing', css: '.sso-card { max-width: 30rem }' } })
  const page = await app.inject({ url: '/sso/signed-out/?scope=everywhere', headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<h1 id="mine">You are signed out everywhere<\/h1><p>everywhere: You are signed out everywhere: every app, on every device\.<\/p>/)
  t.match(page.body, /<span class="sso-name">Billing<\/span>/, 'the theme\'s name in the header')
  t.match(page.body, /<title>You are signed out everywhere · Billing<\/title>/)
  t.match(page.body, /id="sign-in-again">Sign in again</, 'the kit\'s partials')
  const css = await app.inject('/sso/style.css')
  t.equal(css.statusCode, 200)
  t.match(css.headers['content-type'], /text\/css/)
  t.match(css.body, /prefers-color-scheme: dark/)
  t.match(css.body, /\.sso-card \{ max-width: 30rem \}\s*$/, 'theme.css last')
  await t.rejects(buildApp(t, { templates: { nope: 'x' } as never }), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: /templates\.nope/ })
  await t.rejects(buildApp(t, { notFoundPage: 1 as never }), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: /notFoundPage/ })
})

t.test('Russian from Accept-Language: sign-out choices, signed-out pages, sign-in errors', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const choices = await browser.request({ url: '/logout/', headers: RU })
  t.equal(choices.headers['content-language'], 'ru')
  t.match(choices.body, /<html lang="ru">/)
  t.match(choices.body, /<h1>Выход<\/h1>/)
  t.match(choices.body, /Вы вошли как alice\./)
  t.match(choices.body, /id="leave">Покинуть это приложение</)
  t.match(choices.body, /id="logout-everywhere">Выйти везде</)
  const left = await browser.request({ method: 'POST', url: '/logout/', payload: { _csrf: csrfOf(choices.body), scope: 'app' }, headers: RU })
  const page = await browser.request({ url: left.headers.location as string, headers: RU })
  t.match(page.body, /<h1>Вы покинули это приложение<\/h1>/)
  t.match(page.body, /id="sign-in-again">Вернуться в это приложение</)
  const error = await new Browser(app).request({ url: '/sso/accept/', headers: RU })
  t.equal(error.statusCode, 400)
  t.match(error.body, /<h1>Не удалось войти<\/h1>/)
  t.notMatch(error.body, /Sign-in failed/)
  const english = await new Browser(app).request('/logout/')
  t.match(english.body, /You are not signed in\./, 'another browser, English')
})

t.test('a forced locale wins over the browser', async (t) => {
  const { app } = await buildApp(t, { locale: 'ru' })
  const page = await app.inject({ url: '/sso/signed-out/?scope=session', headers: { accept: 'text/html', 'accept-language': 'en' } })
  t.match(page.body, /<h1>Вы вышли<\/h1>/)
  t.match(page.body, /Другие устройства остаются в системе\./)
  await t.rejects(buildApp(t, { locale: 'xx' }), { code: 'FST_SSO_SERVICE_INVALID_OPTION', message: /locale/ })
})

t.test('a theme logo from another origin is allowed by the pages\' CSP', async (t) => {
  const { app } = await buildApp(t, { theme: { name: 'Billing', logoUrl: 'https://cdn.test/billing.svg' } })
  const page = await app.inject({ url: '/logout/', headers: { accept: 'text/html' } })
  t.match(page.body, /<img class="sso-logo" src="https:\/\/cdn.test\/billing.svg" alt=""/)
  t.match(page.headers['content-security-policy'], /img-src 'self' https:\/\/cdn\.test;/)
})

t.test('notFoundPage: a page for browsers, JSON for the rest; off by default', async (t) => {
  const options = { gatewayUrl: GATEWAY, token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET, database: ':memory:' }
  const off = Fastify()
  await off.register(fastifySsoService, options)
  t.teardown(() => off.close())
  t.match((await off.inject({ url: '/nope', headers: { accept: 'text/html' } })).json(), { statusCode: 404 }, 'off: the host app\'s own answer')
  const { app } = await buildApp(t, { notFoundPage: true })
  const page = await app.inject({ url: '/nope', headers: { accept: 'text/html', 'accept-language': 'ru' } })
  t.equal(page.statusCode, 404)
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  t.match(page.body, /<h1>Страница не найдена<\/h1>/)
  const api = await app.inject({ url: '/nope' })
  t.equal(api.statusCode, 404)
  t.same(api.json(), { error: 'Not found' })
})
