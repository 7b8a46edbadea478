// Our service plugin behind a django-sso gateway: the example services A and B (real
// processes, GATEWAY_KIND=django-sso) and a strict django-sso gateway stand-in
// (test/fixtures/django-gateway.mjs: form fields, 200 {"error"} refusals, /sso/get/ without
// flags, a deauthenticate that tells every service but the caller), for 1.x and 2.x/3.x events.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startFleet, type Fleet } from '../scripts/fleet.mjs'
import { peerPort, startDjangoPeer, type DjangoPeer } from './helpers/django-peers.js'
import { waitFor } from './helpers/faults.js'
import { HttpBrowser } from './helpers/http-browser.js'

const PASSWORD = 'django-gateway-password'

interface GatewayState {
  sent: Array<{ service: string, body: Record<string, unknown>, answer: { status?: number, body?: string } }>
  sessions: Record<string, number>
}

async function whoAt (browser: HttpBrowser, base: string): Promise<Record<string, unknown> | null> {
  const page = await browser.send('GET', `${base}/sso/test/`)
  return page.status === 200 ? JSON.parse(page.body).user as Record<string, unknown> : null
}

/** Signs in at a service (the django-sso form when the gateway asks); returns whether a form was shown. */
async function signInAt (browser: HttpBrowser, base: string, gateway: DjangoPeer): Promise<boolean> {
  let page = await browser.go('GET', `${base}/sso/test/`)
  const form = page.url.startsWith(`${gateway.url}/login/`)
  if (form) page = await browser.go('POST', page.url, { username: 'alice', password: PASSWORD })
  if (page.url !== `${base}/sso/test/`) throw new Error(`sign-in at ${base} ended at ${page.url} (${page.status}): ${page.body.slice(0, 300)}`)
  return form
}

for (const version of ['1', '2'] as const) {
  t.test(`services A and B behind a django-sso ${version === '1' ? '1.x' : '2.x/3.x'} gateway`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sso-django-gateway-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const port = await peerPort()
    const fleet: Fleet = await startFleet({
      dataDir, apps: ['service-a', 'service-b'], ports: { gateway: port }, appEnv: { 'service-a': { GATEWAY_KIND: 'django-sso' }, 'service-b': { GATEWAY_KIND: 'django-sso' } }
    })
    t.teardown(fleet.stop)
    const gateway = await startDjangoPeer('gateway', port, {
      DJANGO_SSO_VERSION: version,
      USERS: JSON.stringify([{ username: 'alice', password: PASSWORD, is_staff: true }]),
      SERVICES: JSON.stringify([
        { name: 'a', base_url: fleet.urls.a, token: fleet.secrets.services['service-a']!.secret },
        { name: 'b', base_url: fleet.urls.b, token: fleet.secrets.services['service-b']!.secret }
      ])
    })
    t.teardown(gateway.stop)
    const laptop = new HttpBrowser()
    const phone = new HttpBrowser()

    // Sign-in with the password at A, silently at B.
    t.ok(await signInAt(laptop, fleet.urls.a, gateway), 'A: the django-sso form')
    t.notOk(await signInAt(laptop, fleet.urls.b, gateway), 'B: silent')
    t.match(await whoAt(laptop, fleet.urls.a), { username: 'alice', isStaff: true, isActive: true, ssoSession: null, userId: null },
      'the flags update_account delivered survive the sign-in (django-sso\'s /sso/get/ carries none)')
    const state = await gateway.state<GatewayState>()
    t.ok(state.sent.length >= 2 && state.sent.every((s) => s.answer.status === 200 && JSON.parse(s.answer.body ?? '{}').ok === true),
      'our services took every update_account the gateway sent')
    t.match(state.sent[0]?.body, version === '1' ? { type: 'update_account', username: 'alice' } : { type: 'update_account', fields: { user_identy: 'alice' } })

    // A second device.
    await signInAt(phone, fleet.urls.a, gateway)
    await signInAt(phone, fleet.urls.b, gateway)

    // Sign out at A (its "Sign out"): the gateway tells only B, so A ends every session of
    // alice itself: both devices, everywhere, as the page says.
    const form = await laptop.send('GET', `${fleet.urls.a}/logout/`)
    const out = await laptop.go('POST', `${fleet.urls.a}/logout/`, { _csrf: HttpBrowser.csrf(form.body), scope: 'session' })
    t.match(out.body, /signed out everywhere/i)
    t.equal(await whoAt(phone, fleet.urls.a), null, 'A: the phone\'s session ended too (the gateway did not tell A)')
    await waitFor('B to end alice\'s sessions', async () => await whoAt(laptop, fleet.urls.b) === null && await whoAt(phone, fleet.urls.b) === null)
    t.pass('B: both devices signed out by the gateway\'s deauthenticate')
    const told = (await gateway.state<GatewayState>()).sent.filter((s) => s.body.type === 'deauthenticate').map((s) => s.service)
    t.same(told, ['b'], 'the django-sso gateway told every service but the caller')
    t.same((await gateway.state<GatewayState>()).sessions, {}, 'the gateway sessions ended')

    // A central sign-out at a django-sso gateway tells no service: the apps' sessions live on.
    // (django-sso's behaviour, documented in the compatibility matrix.)
    await signInAt(laptop, fleet.urls.a, gateway)
    const welcome = await laptop.go('POST', `${gateway.url}/logout/`, {})
    t.equal(welcome.url, `${gateway.url}/login/`)
    t.match(await whoAt(laptop, fleet.urls.a), { username: 'alice' }, 'still signed in at A after a central sign-out at django-sso')
  })
}
