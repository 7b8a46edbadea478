// Our gateway with django-sso services: two strict django-sso 1.x stand-ins, one strict
// 2.x/3.x stand-in (test/fixtures/django-service.mjs, which refuse every key their release does
// not take, as ../shared/peers/django-sso.md says the real ones do) and our own service-a, all
// real processes. Sign-in, silent sign-in, account sync, renames, deletions and every sign-out,
// from each side; a refused event retried and dead-lettered.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startFleet, type Fleet } from '../scripts/fleet.mjs'
import { startDjangoPeer, peerPort, type DjangoPeer } from './helpers/django-peers.js'
import { FAST_GATEWAY_ENV, waitFor } from './helpers/faults.js'
import { HttpBrowser } from './helpers/http-browser.js'

const PASSWORD = 'django-interop-password'
const ADMIN_TOKEN = 'admin-token-for-django-tests-0123456789'

interface ServiceState {
  users: Array<{ username: string, is_active: boolean, is_staff: boolean, is_superuser: boolean, fields: Record<string, unknown> }>
  sessions: Record<string, number>
  received: Array<{ body: Record<string, unknown>, answer: Record<string, unknown> }>
}

interface Peer extends DjangoPeer { name: string, protocol: string, secret: string }

async function admin (fleet: Fleet, path: string, body: Record<string, unknown> = {}): Promise<any> {
  const res = await request(`${fleet.internal.gateway}/admin${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const json = await res.body.json() as { result: unknown }
  if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(json)}`)
  return json.result
}

/** Starts the gateway (with service-a) and django-sso stand-ins registered with it. */
async function startWorld (t: Test, peers: Array<{ name: string, protocol: string, version: '1' | '2' }>): Promise<{ fleet: Fleet, peers: Record<string, Peer> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sso-django-services-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const gatewayPort = await peerPort()
  const planned = await Promise.all(peers.map(async (p) => ({ ...p, port: await peerPort(), secret: randomBytes(32).toString('base64url') })))
  const fleet = await startFleet({
    dataDir,
    password: PASSWORD,
    apps: ['gateway', 'service-a'],
    ports: { gateway: gatewayPort },
    appEnv: { gateway: { ADMIN_TOKEN, ...FAST_GATEWAY_ENV } },
    extraServices: planned.map((p) => ({
      name: p.name,
      baseUrl: `http://127.0.0.1:${p.port}`,
      protocol: p.protocol,
      secret: p.secret,
      signingSecret: 'whsec_' + randomBytes(32).toString('base64')
    }))
  })
  t.teardown(fleet.stop)
  const started: Record<string, Peer> = {}
  for (const p of planned) {
    const peer = await startDjangoPeer('service', p.port, { DJANGO_SSO_VERSION: p.version, SSO_ROOT: fleet.urls.gateway, SSO_TOKEN: p.secret })
    t.teardown(peer.stop)
    started[p.name] = { ...peer, name: p.name, protocol: p.protocol, secret: p.secret }
  }
  return { fleet, peers: started }
}

/** Signed in at a django-sso stand-in? Its /sso/test/ says "You authorized as". */
async function signedIn (browser: HttpBrowser, peer: DjangoPeer): Promise<boolean> {
  return /You authorized as <b>alice<\/b>/.test((await browser.send('GET', `${peer.url}/sso/test/`)).body)
}

async function signedInAtA (browser: HttpBrowser, fleet: Fleet): Promise<boolean> {
  return (await browser.send('GET', `${fleet.urls.a}/sso/test/`)).status === 200
}

/** Signs in at a django-sso service through the gateway (the form if the gateway asks). */
async function signInAt (browser: HttpBrowser, peer: DjangoPeer, fleet: Fleet): Promise<{ form: boolean, url: string, body: string }> {
  let page = await browser.go('GET', `${peer.url}/private?x=1`)
  const form = page.url.startsWith(`${fleet.urls.gateway}/login/`) && /type="password"/.test(page.body)
  if (form) page = await browser.go('POST', page.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(page.body) })
  return { form, url: page.url, body: page.body }
}

async function signInEverywhere (browser: HttpBrowser, fleet: Fleet, peers: Peer[]): Promise<void> {
  for (const peer of peers) {
    const done = await signInAt(browser, peer, fleet)
    if (done.url !== `${peer.url}/private?x=1`) throw new Error(`sign-in at ${peer.name} ended at ${done.url}: ${done.body.slice(0, 300)}`)
  }
  const a = await browser.go('GET', `${fleet.urls.a}/private`)
  if (a.url !== `${fleet.urls.a}/private`) throw new Error(`silent sign-in at A ended at ${a.url}`)
}

async function allSignedOut (browser: HttpBrowser, fleet: Fleet, peers: Peer[]): Promise<boolean> {
  for (const peer of peers) if (await signedIn(browser, peer)) return false
  return !(await signedInAtA(browser, fleet))
}

t.test('our gateway, two django-sso 1.x services, a 2.x/3.x one and ours: sign-in, sync, every sign-out', async (t) => {
  const { fleet, peers } = await startWorld(t, [
    { name: 'django-one', protocol: 'django-sso', version: '1' },
    { name: 'django-two', protocol: 'django-sso-1', version: '1' },
    { name: 'django-three', protocol: 'django-sso-2', version: '2' }
  ])
  const all = Object.values(peers)
  const [one, two, three] = all as [Peer, Peer, Peer]
  const browser = new HttpBrowser()

  // 1. Password sign-in at a 1.x service: update_account (exactly its four keys) created the
  //    local user before the browser came back, so /sso/accept/ signs in.
  const first = await signInAt(browser, one, fleet)
  t.ok(first.form, 'the gateway asked for the password')
  t.equal(first.url, `${one.url}/private?x=1`, 'back on the page asked for')
  t.match(first.body, /Private page of <b>alice<\/b>/)
  const oneState = await one.state<ServiceState>()
  t.match(oneState.users, [{ username: 'alice', is_active: true, is_staff: false, is_superuser: false }])
  t.same(Object.keys(oneState.received[0]?.body ?? {}).sort(), ['is_active', 'is_staff', 'is_superuser', 'token', 'type', 'username'],
    'update_account carried exactly the keys django-sso 1.x takes')
  t.ok(oneState.received.every((r) => r.answer.ok === true), 'the service took every event')

  // 2. Silent sign-in at the other 1.x service, the 2.x one and ours.
  for (const peer of [two, three]) {
    const silent = await signInAt(browser, peer, fleet)
    t.notOk(silent.form, `${peer.name}: no form`)
    t.equal(silent.url, `${peer.url}/private?x=1`, `${peer.name}: signed in silently`)
  }
  t.match((await three.state<ServiceState>()).received[0]?.body, { type: 'update_account', fields: { user_identy: 'alice', is_active: true } },
    '2.x got its update_account in the fields shape')
  t.ok(await signedInAtA(browser, fleet) || (await browser.go('GET', `${fleet.urls.a}/private`)).url === `${fleet.urls.a}/private`, 'A signed in silently')

  // 3. Account sync: a flag changed at the gateway reaches every django-sso service.
  await admin(fleet, '/users/flags', { username: 'alice', isStaff: true })
  await waitFor('is_staff at every django-sso service', async () => {
    for (const peer of all) if ((await peer.state<ServiceState>()).users[0]?.is_staff !== true) return false
    return true
  })
  t.pass('update_account with is_staff reached the three django-sso services')
  t.match((await one.state<ServiceState>()).received.at(-1)?.body, { type: 'update_account', is_staff: true })
  t.notOk('changed' in ((await one.state<ServiceState>()).received.at(-1)?.body ?? {}), 'no "changed" key to a 1.x service')

  // 4. Sign-out at a django-sso 1.x service (its /logout/ posts /sso/deauthenticate/): everywhere.
  const outAtOne = await browser.go('GET', `${one.url}/logout/`)
  t.equal(outAtOne.url, `${one.url}/`, 'django-sso took the answer and signed out')
  await waitFor('every service to end alice\'s sessions', async () => await allSignedOut(browser, fleet, all))
  t.match(/Signed in as/.test((await browser.send('GET', `${fleet.urls.gateway}/welcome/`)).body), false, 'gateway session ended too')
  t.match((await two.state<ServiceState>()).received.at(-1)?.body, { type: 'deauthenticate', username: 'alice' })
  t.same(Object.keys((await two.state<ServiceState>()).received.at(-1)?.body ?? {}).sort(), ['token', 'type', 'username'],
    'deauthenticate carried only username (and the token) to 1.x')
  t.same((await three.state<ServiceState>()).received.at(-1)?.body, { type: 'deauthenticate', user_identy: 'alice', token: three.secret })

  // 5. Sign-out of one browser at our service: the SSO session ends; a django-sso service
  //    knows no SSO session, so every session of alice there ends.
  await signInEverywhere(browser, fleet, all)
  const form = await browser.send('GET', `${fleet.urls.a}/logout/`)
  await browser.go('POST', `${fleet.urls.a}/logout/`, { _csrf: HttpBrowser.csrf(form.body), scope: 'session' })
  await waitFor('the django-sso services to end the session', async () => await allSignedOut(browser, fleet, all))
  t.pass('sign-out of one SSO session at service-a reached the django-sso services')

  // 6. Central sign-out at the gateway.
  await signInEverywhere(browser, fleet, all)
  const welcome = await browser.send('GET', `${fleet.urls.gateway}/welcome/`)
  await browser.go('POST', `${fleet.urls.gateway}/logout/`, { _csrf: HttpBrowser.csrf(welcome.body) })
  await waitFor('every service to end the session after the gateway sign-out', async () => await allSignedOut(browser, fleet, all))
  t.pass('gateway sign-out reached every service')

  // 7. Rename: 2.x gets change_user_identy (its session follows the user); 1.x has no rename:
  //    the old local account is disabled, and the next sign-in creates the new name.
  await signInEverywhere(browser, fleet, all)
  await admin(fleet, '/users/rename', { username: 'alice', newUsername: 'alicia' })
  await waitFor('the rename to reach the django-sso services', async () =>
    (await three.state<ServiceState>()).users.some((u) => u.username === 'alicia') &&
    (await one.state<ServiceState>()).users.some((u) => u.username === 'alice' && !u.is_active))
  t.match((await three.state<ServiceState>()).received.at(-1)?.body, { type: 'change_user_identy', old: 'alice', new: 'alicia' })
  t.match(await (await browser.send('GET', `${three.url}/sso/test/`)).body, /You authorized as <b>alicia<\/b>/, '2.x: still signed in, as alicia')
  t.notOk(await signedIn(browser, one), '1.x: the old account is disabled, so signed out')
  const renamedAtOne = await browser.go('GET', `${one.url}/sso/test/`)
  t.match(renamedAtOne.body, /You authorized as <b>alicia<\/b>/, '1.x: signing in again (silently) creates and signs in alicia')

  // 8. Deletion: 2.x gets delete_user (disables the user), 1.x an update_account with is_active false.
  await admin(fleet, '/users/delete', { username: 'alicia' })
  await waitFor('the deletion to reach the django-sso services', async () =>
    (await three.state<ServiceState>()).users.every((u) => !u.is_active) &&
    (await one.state<ServiceState>()).users.every((u) => !u.is_active))
  t.match((await three.state<ServiceState>()).received.at(-1)?.body, { type: 'delete_user', user_identy: 'alicia' })
  t.match((await one.state<ServiceState>()).received.at(-1)?.body, { type: 'update_account', username: 'alicia', is_active: false })
  for (const peer of all) t.notOk(/You authorized as/.test((await browser.send('GET', `${peer.url}/sso/test/`)).body), `${peer.name}: signed out`)

  // Nothing refused, nothing left.
  for (const peer of all) {
    const refused = (await peer.state<ServiceState>()).received.filter((r) => r.answer.ok !== true)
    t.same(refused, [], `${peer.name} took every event it was sent`)
  }
  t.same(await admin(fleet, '/events/status'), [], 'no event pending or dead')
})

t.test('a refused event (HTTP 200 {"error"}) is a failure: retried, then dead-lettered; the sign-in shows the retry page', async (t) => {
  // A 2.x/3.x service registered as 1.x: it refuses every 1.x-shaped event, as a real one would.
  const { fleet, peers } = await startWorld(t, [{ name: 'misregistered', protocol: 'django-sso-1', version: '2' }])
  const peer = peers.misregistered as Peer
  const browser = new HttpBrowser()
  const signIn = await signInAt(browser, peer, fleet)
  t.ok(signIn.form)
  t.match(signIn.body, /misregistered is not reachable/, 'the retry page, not a redirect to a service that cannot let the user in')
  t.notOk((await peer.state<ServiceState>()).users.length > 0, 'no local user was created')
  await waitFor('the refused update_account to be dead-lettered', async () =>
    ((await admin(fleet, '/events/dead')) as unknown[]).length > 0, 20_000)
  const dead = await admin(fleet, '/events/dead') as Array<{ lastError: string, attempts: number }>
  t.match(dead[0], { lastError: /^refused: update_account\(\) got an unexpected keyword argument 'username'|refused: update_account\(\) missing/ })
  t.ok((dead[0]?.attempts ?? 0) > 1, `retried before it was dead (${dead[0]?.attempts} attempts)`)
  t.match(await admin(fleet, '/events/status'), [{ dead: 1 }], 'visible in events.status()')
  const received = (await peer.state<ServiceState>()).received
  t.ok(received.length > 1 && received.every((r) => typeof r.answer.error === 'string'), 'every attempt was refused by the service')
})
