import Fastify, { type FastifyServerOptions } from 'fastify'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { Agent, request } from 'undici'
import fastifySsoGateway, { type FastifySsoGatewayOptions } from '../src/index.js'
import { Browser, logLines, SESSION_SECRET } from './helpers.js'

// A self-signed certificate for 127.0.0.1, made for these tests only (not a secret).
const key = readFileSync(new URL('./fixtures/tls-key.pem', import.meta.url))
const cert = readFileSync(new URL('./fixtures/tls-cert.pem', import.meta.url))

async function gateway (options: Partial<FastifySsoGatewayOptions> = {}, server: FastifyServerOptions = {}) {
  const app = Fastify(server)
  await app.register(fastifySsoGateway, { sessionSecret: SESSION_SECRET, database: ':memory:', ...options })
  await app.ready()
  return app
}

// The sign-in form sets the form cookie (no session row for an anonymous form); it follows the
// session cookie's Secure rule, and is named __Host- when Secure.
const sessionCookie = (cookies: Array<{ name: string, secure?: boolean }>) =>
  cookies.find((c) => c.name === 'sso_gateway_session_form' || c.name === '__Host-sso_gateway_session_form')

t.test('by default the cookie is Secure exactly when the request came over HTTPS', async (t) => {
  const plain = await gateway({}, { trustProxy: true })
  t.teardown(() => plain.close())
  const overHttp = sessionCookie((await plain.inject('/login/')).cookies)
  t.ok(overHttp, 'plain http: a cookie is set (a browser keeps it)')
  t.notOk(overHttp?.secure, 'and it is not Secure')
  const proxied = sessionCookie((await plain.inject({ url: '/login/', headers: { 'x-forwarded-proto': 'https' } })).cookies)
  t.equal(proxied?.secure, true, 'HTTPS through a trusted proxy: Secure')

  const untrusting = await gateway()
  t.teardown(() => untrusting.close())
  const spoofed = sessionCookie((await untrusting.inject({ url: '/login/', headers: { 'x-forwarded-proto': 'https' } })).cookies)
  t.notOk(spoofed?.secure, 'X-Forwarded-Proto from an untrusted client is ignored')

  const tls = await gateway({}, { https: { key, cert } } as FastifyServerOptions)
  t.teardown(() => tls.close())
  const address = await tls.listen({ port: 0, host: '127.0.0.1' })
  const agent = new Agent({ connect: { ca: cert } })
  t.teardown(() => agent.close())
  const res = await request(`${address}/login/`, { dispatcher: agent })
  await res.body.text()
  t.match(String(res.headers['set-cookie']), /^__Host-sso_gateway_session_form=[^;]+;.*; Secure/, 'direct HTTPS: Secure')
})

t.test('cookieSecure true or false overrides what the request says', async (t) => {
  const never = await gateway({ cookieSecure: false }, { trustProxy: true })
  t.teardown(() => never.close())
  t.notOk(sessionCookie((await never.inject({ url: '/login/', headers: { 'x-forwarded-proto': 'https' } })).cookies)?.secure)
  const always = await gateway({ cookieSecure: true })
  t.teardown(() => always.close())
  t.equal((await always.inject('/login/')).cookies.length, 0, 'cookieSecure: true sends no cookie over plain http')
})

t.test('a form posted back without its cookie: the page and the log say why', async (t) => {
  const { lines, server } = logLines()
  const app = await gateway({ cookieSecure: true }, server)
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  t.equal(browser.cookies.size, 0, 'the Secure cookie was not sent over plain http')
  const res = await browser.request('POST', '/login/', { username: 'alice', password: 'x', _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 403)
  t.match(res.body, /did not send back this site&#39;s sign-in cookie/)
  t.match(res.body, /plain http while the cookie is only sent over https/)
  const log = lines.find((l) => l.audit === 'csrf_refused')
  t.match(log, { reason: 'no session cookie', cookieName: 'sso_gateway_session', cookieSecure: true, protocol: 'http' })
  t.match(log?.msg, /cookieSecure option \(true\)/)

  // With its cookie, a bad token is the other message.
  const ok = await gateway({ cookieSecure: false })
  t.teardown(() => ok.close())
  const b2 = new Browser(ok)
  await b2.request('GET', '/login/')
  const stale = await b2.request('POST', '/login/', { username: 'alice', password: 'x', _csrf: 'stale' })
  t.equal(stale.statusCode, 403)
  t.match(stale.body, /This form has expired or did not come from this site/)
})
