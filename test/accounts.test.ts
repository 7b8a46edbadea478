import t from 'tap'
import { tempDir } from './helpers/temp.js'
import { request } from 'undici'
import { startFleet, type Fleet } from '../scripts/fleet.mjs'
import { HttpBrowser } from './helpers/http-browser.js'

const PASSWORD = 'accounts-test-password'
const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef'

async function eventually (what: string, check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function post (url: string, body: Record<string, unknown> = {}): Promise<{ status: number, json: any }> {
  const res = await request(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: res.statusCode, json: await res.body.json() }
}

const admin = async (fleet: Fleet, path: string, body: Record<string, unknown> = {}): Promise<any> => {
  const res = await post(`${fleet.internal.gateway}/admin${path}`, body)
  if (res.status !== 200) throw new Error(`admin ${path}: ${res.status} ${JSON.stringify(res.json)}`)
  return res.json.result
}

interface Local { id: string, username: string, attributes?: Record<string, unknown>, fields?: Record<string, unknown> }
async function locals (base: string): Promise<Local[]> {
  const res = await request(`${base}/accounts.json`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  return await res.body.json() as Local[]
}

async function signInAt (browser: HttpBrowser, fleet: Fleet, base: string, path: string): Promise<{ status: number, url: string, body: string }> {
  let page = await browser.go('GET', `${base}${path}`)
  if (page.url.startsWith(`${fleet.urls.gateway}/login/`) && /type="password"/.test(page.body)) {
    page = await browser.go('POST', page.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(page.body) })
  }
  return page
}

t.test('access per service, per-service fields, renames, pipeline refusals and resync, across real processes', async (t) => {
  const fleet = await startFleet({
    dataDir: tempDir('sso-accounts-'),
    password: PASSWORD,
    appEnv: { gateway: { ADMIN_TOKEN, OUTBOX_INTERVAL: '100', RETRY_SCHEDULE: '[100]' }, 'service-a': { ADMIN_TOKEN }, 'service-b': { ADMIN_TOKEN } }
  })
  t.teardown(fleet.stop)
  const { urls } = fleet

  // Access: B is limited to the group b-users, which alice is not in.
  await admin(fleet, '/groups/create', { group: 'b-users' })
  await admin(fleet, '/services/access', { service: 'service-b', groups: ['b-users'] })
  const browser = new HttpBrowser()
  const atA = await signInAt(browser, fleet, urls.a, '/private')
  t.equal(atA.url, `${urls.a}/private`, 'A is open to everyone')
  const refused = await browser.go('GET', `${urls.b}/account`)
  t.equal(refused.status, 403)
  t.match(refused.body, /you do not have access to\s+Service B/)
  t.match(refused.body, /Sign out/, 'with a way to sign out')
  t.equal((await browser.send('GET', `${urls.b}/api/me`)).status, 302, 'no session at B')
  t.same(await locals(urls.b), [], 'B was told nothing')

  await admin(fleet, '/groups/add-member', { group: 'b-users', username: 'alice' })
  const granted = await browser.go('GET', `${urls.b}/account`)
  t.equal(granted.url, `${urls.b}/account`, 'access granted: the next sign-in goes through')
  t.match(granted.body, /Signed in as <strong>alice/)

  // A custom field reaches only the service configured for it.
  await admin(fleet, '/services/fields', { service: 'service-a', fields: ['email', 'display_name', 'groups', 'team'] })
  await admin(fleet, '/users/attributes', { username: 'alice', attributes: { team: 'blue' } })
  await eventually('A to receive the team field', async () => (await locals(urls.a))[0]?.attributes?.team === 'blue')
  t.pass('A has the team')
  await eventually('B to receive the update', async () => ((await locals(urls.b))[0]?.fields?.groups as string[] | undefined)?.includes('b-users') === true)
  t.notOk('team' in ((await locals(urls.b))[0]?.fields ?? {}), 'B never sees the team field')

  // A rename re-keys the account on both services.
  const idBefore = (await locals(urls.a))[0]?.id
  await admin(fleet, '/users/rename', { username: 'alice', newUsername: 'alicia' })
  for (const base of [urls.a, urls.b]) {
    await eventually(`${base} to re-key the account`, async () => (await locals(base))[0]?.username === 'alicia')
    const list = await locals(base)
    t.equal(list.length, 1, 'one account, not a second one')
    t.equal(list[0]?.id, idBefore, 'the same id')
  }
  t.match((await browser.send('GET', `${urls.a}/sso/test/`)).body, /"username":"alicia"/, 'the live session follows the rename')
  await admin(fleet, '/users/rename', { username: 'alicia', newUsername: 'alice' })

  // A pipeline step at B refuses, with its own message.
  await admin(fleet, '/services/fields', { service: 'service-b', fields: ['email', 'display_name', 'groups', 'b_blocked'] })
  await admin(fleet, '/users/attributes', { username: 'alice', attributes: { team: 'blue', b_blocked: true } })
  const other = new HttpBrowser()
  await signInAt(other, fleet, urls.a, '/private')
  const blocked = await other.go('GET', `${urls.b}/account`)
  t.equal(blocked.status, 403)
  t.match(blocked.body, /Service B is closed to your account/, 'the step\'s message is shown')
  t.equal((await other.send('GET', `${urls.b}/api/me`)).status, 302, 'no session at B')
  await admin(fleet, '/users/attributes', { username: 'alice', attributes: { team: 'blue' } })

  // Resync: B misses events (disabled at the gateway meanwhile), then catches up.
  await admin(fleet, '/services/enabled', { service: 'service-b', enabled: false })
  await admin(fleet, '/users/password', { username: 'alice', password: PASSWORD, endSessions: 'none' })
  await admin(fleet, '/users/rename', { username: 'alice', newUsername: 'alice-renamed' })
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal((await locals(urls.b))[0]?.username, 'alice', 'B missed the rename')
  await admin(fleet, '/services/enabled', { service: 'service-b', enabled: true })
  const resync = await post(`${urls.b}/admin/resync`)
  t.equal(resync.status, 200)
  t.match(resync.json, { complete: true })
  t.equal((await locals(urls.b))[0]?.username, 'alice-renamed', 'resync repaired B')
  t.equal((await locals(urls.b)).length, 1)
})
