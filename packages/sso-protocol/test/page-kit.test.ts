import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  BUILT_IN_MESSAGES, chooseLocale, ENGLISH_MESSAGES, isLogoUrl, PageKit, resolvePageOptions, RUSSIAN_MESSAGES, type OptionFailure
} from '../src/pages/index.js'

const fail: OptionFailure = (option, problem, value) => { throw new Error(`${option} ${problem} (got ${JSON.stringify(value)})`) }

t.test('Russian is complete: every English key, the same parameters, no English left over', async (t) => {
  const params = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort()
  for (const [key, en] of Object.entries(ENGLISH_MESSAGES)) {
    const ru = (RUSSIAN_MESSAGES as Record<string, string>)[key]
    t.ok(typeof ru === 'string' && ru.length > 0, `${key}: translated`)
    t.same(params(ru ?? ''), params(en), `${key}: same parameters`)
    if (/[a-z]{4,}/.test(en.replace(/\{\w+\}|https?|cookie/g, ''))) t.not(ru, en, `${key}: not left in English`)
  }
  t.same(Object.keys(RUSSIAN_MESSAGES).sort(), Object.keys(ENGLISH_MESSAGES).sort(), 'no extra keys')
  t.same(Object.keys(BUILT_IN_MESSAGES), ['en', 'ru'])
})

t.test('chooseLocale: the best available match of Accept-Language', async (t) => {
  const available = ['en', 'ru', 'pt-BR']
  t.equal(chooseLocale(undefined, available), 'en', 'no header: the fallback')
  t.equal(chooseLocale('ru', available), 'ru')
  t.equal(chooseLocale('ru-RU,ru;q=0.9,en-US;q=0.8', available), 'ru', 'a region falls back to its language')
  t.equal(chooseLocale('de-DE,de;q=0.9,ru;q=0.5,en;q=0.4', available), 'ru', 'the first available by weight')
  t.equal(chooseLocale('en;q=0.2, ru;q=0.8', available), 'ru', 'weights, not order')
  t.equal(chooseLocale('ru;q=0, en', available), 'en', 'q=0 means not acceptable')
  t.equal(chooseLocale('PT-br', available), 'pt-BR', 'tags compare case-insensitively')
  t.equal(chooseLocale('fr, ,*', available), 'en', 'nothing available')
  t.equal(chooseLocale('ru;foo=bar', available), 'ru', 'other parameters are ignored')
  t.equal(chooseLocale('x'.repeat(1001), available), 'en', 'an oversized header is ignored')
  t.equal(chooseLocale('fr', available, 'ru'), 'ru', 'another fallback')
})

t.test('resolvePageOptions: defaults, and each bad value named', async (t) => {
  const none = resolvePageOptions({}, ['login'], fail)
  t.same(none, { templates: {}, locale: null, messages: {}, theme: { name: null, logoUrl: null, css: '' } })
  t.ok(Object.isFrozen(none) && Object.isFrozen(none.theme))
  const dir = t.testdir({ 'login.eta': 'x' })
  const ok = resolvePageOptions({
    templates: { login: join(dir, 'login.eta') },
    locale: 'de',
    messages: { de: { 'login.heading': 'Anmelden' }, ru: { 'login.heading': 'Войдите' } },
    theme: { name: '  ACME  ', logoUrl: '/logo.svg', css: ':root{--sso-accent:#000}' }
  }, ['login'], fail)
  t.equal(ok.locale, 'de', 'an added locale can be forced')
  t.equal(ok.messages.ru?.['login.submit'], 'Войти', 'an override keeps the rest of a built-in locale')
  t.equal(ok.theme.name, 'ACME')
  const bad: Array<[object, RegExp]> = [
    [{ templates: 'x' }, /^templates must be an object/],
    [{ templates: { nope: 'x' } }, /^templates\.nope is not a page/],
    [{ templates: { login: join(dir, 'missing.eta') } }, /^templates\.login must be the path of an existing eta file/],
    [{ messages: [] }, /^messages must be an object/],
    [{ messages: { English: {} } }, /^messages\.English must be keyed by a lower-case language tag/],
    [{ messages: { de: 'x' } }, /^messages\.de must be an object/],
    [{ messages: { de: { 'login.typo': 'x' } } }, /^messages\.de\.login\.typo is not a message key/],
    [{ messages: { de: { 'login.heading': 1 } } }, /^messages\.de\.login\.heading must be a string/],
    [{ locale: 'fr' }, /^locale must be one of the available locales \(en, ru\)/],
    [{ locale: 7 }, /^locale must be one of/],
    [{ theme: 'dark' }, /^theme must be an object/],
    [{ theme: { name: ' ' } }, /^theme\.name must be a string of 1 to 100/],
    [{ theme: { logoUrl: 'javascript:alert(1)' } }, /^theme\.logoUrl must be an absolute http\(s\) URL/],
    [{ theme: { css: 5 } }, /^theme\.css must be a string of CSS/]
  ]
  for (const [options, message] of bad) t.throws(() => resolvePageOptions(options, ['login'], fail), message, JSON.stringify(options))
})

t.test('isLogoUrl: an absolute http(s) URL or a path on the same site', async (t) => {
  for (const url of ['https://cdn.test/l.svg', 'http://x.test/l.png', '/static/l.png']) t.ok(isLogoUrl(url), url)
  for (const url of ['', '//evil.test/l.png', 'l.png', 'data:image/png;base64,AA', 'https://u:p@x.test/l', '/a b', '/a"b', 'not a url', 3]) {
    t.notOk(isLogoUrl(url), String(url))
  }
})

t.test('PageKit: layout and partials, translations with parameters, English for a missing key', async (t) => {
  const dir = t.testdir({ 'hello.eta': "<% layout('@layout') %><h1><%= it.heading %></h1><p><%= it.t('common.signedInAs', { user: it.user }) %> <%= it.t('common.continueTo') %></p>" })
  writeFileSync(join(dir, 'other.eta'), 'plain')
  const options = resolvePageOptions({ messages: { de: { 'common.signedInAs': 'Angemeldet als {user}.' } }, theme: { name: 'ACME', css: '.x{}' } }, ['hello', 'other'], fail)
  const kit = new PageKit(options, `${dir}/`, ['hello', 'other'], '/s.css')
  t.same(kit.locales, ['en', 'ru', 'de'])
  const de = kit.render('hello', 'de', { heading: 'Hallo', user: '<b>' })
  t.match(de, /<html lang="de">/)
  t.match(de, /<title>Hallo · ACME<\/title>/)
  t.match(de, /<link rel="stylesheet" href="\/s.css">/)
  t.match(de, /Angemeldet als &lt;b&gt;\./, 'escaped parameters')
  t.match(de, /to continue to \{service\}/, 'a key the locale lacks: English; a missing parameter stays visible')
  t.equal(kit.render('other', 'en', {}), 'plain')
  t.match(kit.css, /--sso-accent/)
  t.match(kit.css, /\.x\{\}\n$/, 'theme.css last')
  t.equal(kit.localeOf('ru-RU'), 'ru')
  t.equal(kit.translator('xx')('common.home'), 'Home', 'an unknown locale: English')
  t.equal(kit.translator('en')('common.signedInAs', { other: 'x' }), 'Signed in as {user}.', 'a parameter not given stays visible')
  t.equal(kit.translator('en')('common.signedInAs', { user: 'bob' }), 'Signed in as bob.')
  const forced = new PageKit(resolvePageOptions({ locale: 'ru' }, ['hello'], fail), `${dir}/`, ['hello'], '/s.css')
  t.equal(forced.localeOf('en-US,en'), 'ru', 'a forced locale wins over the browser')
  t.notMatch(forced.render('hello', 'ru', { heading: 'x', user: 'u' }), /sso-name/, 'no name, no name in the header')
})
