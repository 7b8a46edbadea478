// Another process holds a write lock on the gateway's SQLite file. A write of the gateway waits
// for it without blocking the event loop: while the lock is held and the write still waits,
// other requests (a static file, a database read) are served; once the lock goes, the write
// completes. Real gateway process, real lock from this (another) process.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { startFleet } from '../../scripts/fleet.mjs'
import { FAST_GATEWAY_ENV, obtain, openSqlite, startStandIn } from '../helpers/faults.js'

const PASSWORD = 'faults-password-lock'

t.test('a foreign write lock: the waiting write does not freeze the gateway', async (t) => {
  const standIn = await startStandIn()
  t.teardown(standIn.stop)
  const svc = standIn.seed('svc')
  const dataDir = mkdtempSync(join(tmpdir(), 'sso-faults-lock-'))
  const fleet = await startFleet({
    dataDir, password: PASSWORD, apps: ['gateway'], extraServices: [svc], appEnv: { gateway: { ...FAST_GATEWAY_ENV, BUSY_TIMEOUT: '60000' } }
  })
  t.teardown(fleet.stop)
  const gw = fleet.internal.gateway
  const pendingToken = await obtain(gw, svc.secret)

  const locker = openSqlite(join(dataDir, 'gateway.sqlite'), { timeout: 0 })
  locker.exec('BEGIN IMMEDIATE')
  locker.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (-1, 0)').run()
  let held = true
  t.teardown(() => { if (held) locker.exec('ROLLBACK'); locker.close() })

  // A write: /sso/obtain/ stores a request token, and must wait for the lock.
  let answered = false
  const write = request(`${gw}/sso/obtain/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: svc.secret, next_url: '/' }).toString()
  }).then((res) => { answered = true; return res })

  // Meanwhile: a static file, many times over (the write reached the gateway long before the
  // last of them), and a read of the database (WAL readers do not wait for a writer).
  for (let i = 0; i < 20; i++) {
    const css = await request(`${gw}/sso/style.css`)
    t.equal(css.statusCode, 200, `static request ${i} served`)
    await css.body.dump()
  }
  const read = await request(`${gw}/sso/get/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: svc.secret, authentication_token: pendingToken }).toString()
  })
  t.equal(read.statusCode, 409, 'a database read is served: the request is still pending')
  await read.body.dump()
  t.equal(answered, false, 'all that while the write was still waiting for the lock')

  locker.exec('ROLLBACK')
  held = false
  const res = await write
  t.equal(res.statusCode, 200, 'the lock gone, the write completes')
  t.match(await res.body.json(), { token: String })
  t.equal(fleet.procs.gateway!.exitCode, null, 'the gateway is still running')
})
