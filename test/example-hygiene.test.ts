// Risk: the example apps handed every account to anonymous visitors (/accounts.json), sent no
// anti-framing header on pages with sign-out buttons (clickjacking), and an empty ADMIN_TOKEN
// opened the gateway's admin API to `Authorization: Bearer `. Real processes, as a user runs them.
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { startFleet } from '../scripts/fleet.mjs'

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef'
const ROOT = fileURLToPath(new URL('..', import.meta.url))

t.test('accounts need the admin token; pages cannot be framed', async (t) => {
  const fleet = await startFleet({
    dataDir: mkdtempSync(join(tmpdir(), 'sso-hygiene-')),
    appEnv: { gateway: { ADMIN_TOKEN }, 'service-a': { ADMIN_TOKEN }, 'service-b': { ADMIN_TOKEN } }
  })
  t.teardown(fleet.stop)
  for (const base of [fleet.urls.a, fleet.urls.b]) {
    const anonymous = await request(`${base}/accounts.json`)
    t.equal(anonymous.statusCode, 401, `${base}: anonymous visitors get no accounts`)
    t.notMatch(await anonymous.body.text(), /alice|username/)
    const empty = await request(`${base}/accounts.json`, { headers: { authorization: 'Bearer ' } })
    t.equal(empty.statusCode, 401, 'an empty bearer token is refused')
    await empty.body.dump()
    const admin = await request(`${base}/accounts.json`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    t.equal(admin.statusCode, 200)
    await admin.body.dump()
  }
  for (const url of [`${fleet.urls.a}/`, `${fleet.urls.b}/`, `${fleet.urls.a}/logout/`, `${fleet.urls.gateway}/login/`]) {
    const res = await request(url)
    await res.body.dump()
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/, `${url}: CSP frame-ancestors`)
    if (!url.startsWith(fleet.urls.gateway)) t.equal(res.headers['x-frame-options'], 'DENY', `${url}: X-Frame-Options`)
  }
  const gatewayAdmin = await request(`${fleet.internal.gateway}/admin/events/status`, { method: 'POST', headers: { authorization: 'Bearer ' } })
  t.equal(gatewayAdmin.statusCode, 401)
  await gatewayAdmin.body.dump()
})

t.test('an empty or short ADMIN_TOKEN stops the example apps at start', async (t) => {
  for (const app of ['gateway', 'service-b', 'service-a']) {
    for (const token of ['', 'short']) {
      const child = spawn(process.execPath, [join(ROOT, 'examples', app, 'dist', 'server.js')], {
        env: { ...process.env, ADMIN_TOKEN: token, PORT: '0', DATABASE: ':memory:', SESSION_SECRET: 'x'.repeat(40) },
        stdio: ['ignore', 'ignore', 'pipe']
      })
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
      const code = await new Promise<number | null>((resolve) => {
        child.once('exit', resolve)
        setTimeout(() => { child.kill('SIGKILL') }, 20_000).unref()
      })
      t.equal(code, 1, `${app} with ADMIN_TOKEN=${JSON.stringify(token)} exits`)
      t.match(stderr, /ADMIN_TOKEN must be at least 32 characters/)
    }
  }
})
