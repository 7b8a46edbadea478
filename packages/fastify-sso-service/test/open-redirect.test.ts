import t from 'tap'
import { Browser, buildApp, signIn } from './helpers.js'

/** Known open-redirect bypass families; each must end on a local path. */
const HOSTILE = [
  'https://evil.example/',
  '//evil.example',
  '///evil.example',
  '/\\evil.example',
  '\\\\evil.example',
  '/%2F%2Fevil.example',
  '/%5Cevil.example',
  '/%252F%252Fevil.example',
  'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  '/\t/evil.example',
  '/%09/evil.example',
  '/\uff0f\uff0fevil.example',
  'https:evil.example',
  '/@evil.example',
  'evil.example',
  '/x%0d%0aSet-Cookie:%20a=b'
]

function isLocal (location: string | undefined): boolean {
  return location !== undefined && location.startsWith('/') && !location.startsWith('//') && !location.includes('\\')
}

t.test('login never forwards a hostile next to the gateway', async (t) => {
  const { app, gateway } = await buildApp(t)
  for (const next of HOSTILE) {
    let sent: string | null = null
    gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, (o) => {
      sent = new URLSearchParams(String(o.body)).get('next_url')
      return { token: 'tok' }
    })
    const res = await app.inject(`/login/?next=${encodeURIComponent(next)}`)
    t.equal(res.statusCode, 302, next)
    t.equal(sent, next === '/@evil.example' ? next : '/', `${JSON.stringify(next)} became ${JSON.stringify(sent)}`)
  }
})

t.test('accept redirects only to a local path, whatever the gateway says', async (t) => {
  for (const next of HOSTILE) {
    const { app, gateway } = await buildApp(t)
    const res = await signIn(new Browser(app), gateway, { next })
    t.equal(res.statusCode, 302)
    t.ok(isLocal(res.headers.location), `${JSON.stringify(next)} -> ${String(res.headers.location)}`)
    t.equal(res.headers.location, next === '/@evil.example' ? next : '/', 'only a local path survives (/@evil.example is a path here)')
  }
})

t.test('logout goes to the configured local path only', async (t) => {
  const { app, gateway } = await buildApp(t)
  const browser = new Browser(app)
  await signIn(browser, gateway)
  const csrf = /name="_csrf" value="([^"]+)"/.exec((await browser.request('/logout/')).body)?.[1] as string
  gateway.intercept({ path: '/sso/deauthenticate/', method: 'POST' }).reply(200, { ok: true })
  const res = await browser.request({ method: 'POST', url: '/logout/?next=https://evil.example/', payload: { _csrf: csrf } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/sso/signed-out/?scope=session')
})
