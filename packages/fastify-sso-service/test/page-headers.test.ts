import t from 'tap'
import { Browser, buildApp, signIn } from './helpers.js'

// Risk: the service plugin set no security headers of its own on its pages: a framed
// "Sign out everywhere" button (clickjacking), sniffed or leaked URLs.

t.test('every page and redirect of the plugin carries anti-framing and other security headers', async (t) => {
  const { app, gateway } = await buildApp(t)
  gateway.intercept({ path: '/sso/obtain/', method: 'POST' }).reply(200, { token: 'tok' })
  const anonymous = new Browser(app)
  const signedIn = new Browser(app)
  await signIn(signedIn, gateway)
  const responses = {
    'login redirect': await anonymous.request('/login/'),
    'accept without sign-in': await anonymous.request('/sso/accept/'),
    'sign-out page': await signedIn.request('/logout/'),
    'signed-out page': await anonymous.request('/sso/signed-out/'),
    'test page': await anonymous.request('/sso/test/')
  }
  for (const [name, res] of Object.entries(responses)) {
    t.equal(res.headers['x-frame-options'], 'DENY', `${name}: x-frame-options`)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/, `${name}: CSP frame-ancestors`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${name}: no referrer`)
    t.equal(res.headers['cross-origin-opener-policy'], 'same-origin', `${name}: COOP`)
  }
})
