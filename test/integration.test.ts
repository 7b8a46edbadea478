import t from 'tap'
import { tempDir } from './helpers/temp.js'
import { request } from 'undici'
import { startFleet } from '../scripts/fleet.mjs'
import { HttpBrowser } from './helpers/http-browser.js'

const PASSWORD = 'integration-password-1'

async function waitFor (what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function post (url: string, form: Record<string, string>): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString()
  })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

t.test('three real processes: sign-in, silent sign-in, single logout, refusals', async (t) => {
  const fleet = await startFleet({ dataDir: tempDir('sso-integration-'), password: PASSWORD })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const browser = new HttpBrowser()

  // 1. Sign in at A through the gateway's form; land on A's `next` page, signed in.
  const form = await browser.go('GET', `${urls.a}/private`)
  t.equal(form.status, 200)
  t.ok(form.url.startsWith(`${urls.gateway}/login/?sso=`), 'A sent the browser to the gateway form')
  t.match(form.body, /<span class="sso-service-name">Service A<\/span>[\s\S]*to continue to Service A/, 'the display name')
  const requestToken = new URL(form.url).searchParams.get('sso') as string

  const wrong = await browser.go('POST', form.url, { username: 'alice', password: 'not-it', _csrf: HttpBrowser.csrf(form.body) })
  t.equal(wrong.status, 401, 'a wrong password is refused')
  t.match(wrong.body, /Wrong username or password/)
  const unknown = await browser.go('POST', form.url, { username: 'mallory', password: 'not-it', _csrf: HttpBrowser.csrf(wrong.body) })
  t.equal(unknown.status, 401)
  t.equal(/<p class="error"[^>]*>([^<]*)</.exec(unknown.body)?.[1], /<p class="error"[^>]*>([^<]*)</.exec(wrong.body)?.[1],
    'unknown user and wrong password get the same message')

  const landed = await browser.go('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(unknown.body) })
  t.equal(landed.status, 200)
  t.equal(landed.url, `${urls.a}/private`, 'back on the page asked for')
  t.match(landed.body, /Signed in as <strong>alice<\/strong>/)
  t.match(landed.body, /Local account: alice@example.com/, 'the onAccount hook made the local account')

  // 2. B signs in silently: no form on the way.
  const atB = await browser.go('GET', `${urls.b}/account`)
  t.equal(atB.status, 200)
  t.equal(atB.url, `${urls.b}/account`)
  t.match(atB.body, /Signed in as <strong>alice<\/strong>/)
  t.ok(atB.chain.some((u) => u.startsWith(`${urls.gateway}/login/?sso=`)), 'went through the gateway')
  t.notMatch(atB.body, /type="password"/, 'no password asked')

  // 3. A replayed request token is refused.
  const replay = await post(`${urls.gateway}/sso/make_used/`, { token: fleet.secrets.services['service-a']!.secret, authentication_token: requestToken })
  t.equal(replay.status, 404)
  t.match(replay.json, { error: /already used/ })
  const reread = await post(`${urls.gateway}/sso/get/`, { token: fleet.secrets.services['service-a']!.secret, authentication_token: requestToken })
  t.equal(reread.status, 404)

  // 4. An unknown service token gets a JSON error, never a 500.
  for (const path of ['/sso/obtain/', '/sso/get/', '/sso/make_used/', '/sso/deauthenticate/']) {
    const res = await post(`${urls.gateway}${path}`, { token: 'not-a-service', next_url: '/', authentication_token: 'x', user_identy: 'alice' })
    t.equal(res.status, 401, `${path} refuses an unknown service`)
    t.same(res.json, { error: 'Unknown or disabled service token', code: 'FST_SSO_GATEWAY_UNAUTHORIZED_SERVICE' })
  }

  // 5. Log out at B: A and the gateway end the session too.
  const choices = await browser.send('GET', `${urls.b}/logout/`)
  const logout = await browser.go('POST', `${urls.b}/logout/`, { _csrf: HttpBrowser.csrf(choices.body), scope: 'session' })
  t.equal(logout.status, 200)
  t.equal(new URL(logout.url).pathname, '/sso/signed-out/', 'a signed-out page')
  const bAfter = await browser.send('GET', `${urls.b}/api/me`)
  t.equal(bAfter.status, 302, 'B session ended: back to sign-in')
  t.match(bAfter.headers.location, /^\/login\/\?next=/)
  await waitFor('A to hear of the logout', async () => (await browser.send('GET', `${urls.a}/private`)).status === 302)
  const aAfter = await browser.send('GET', `${urls.a}/`)
  t.match(aAfter.body, /Not signed in/)
  const gw = await browser.send('GET', `${urls.gateway}/welcome/`)
  t.match(gw.body, /Nobody is signed in/)

  // Signing in again asks for the password (no silent sign-in after logout).
  const again = await browser.go('GET', `${urls.a}/private`)
  t.match(again.body, /type="password"/)
})
