// In-process micro-measurements behind the server changes of issue 15 (`node bench/micro.mjs`):
// the store calls a protocol request makes, timed one by one on a fresh SQLite file, CPU time
// per call (process.cpuUsage, so a busy neighbour inflates it less than wall time).
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteGatewayStore } from 'fastify-sso-gateway'
import { generateToken, hashToken } from 'fastify-sso-protocol'

const dir = mkdtempSync(join(tmpdir(), 'sso-micro-'))
const N = Number(process.env.N ?? 20_000)
const out = {}

async function time (label, n, fn) {
  for (let i = 0; i < Math.min(1000, n); i++) await fn(i) // warm-up
  const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) await fn(i + 1_000_000)
  const c = process.cpuUsage(c0)
  out[label] = Math.round((c.user + c.system) / n * 100) / 100 // µs per call
}

const service = (id, tokenHash) => ({
  id, name: id, baseUrl: `http://${id}.test`, eventUrl: `http://${id}.test/sso/event/`, tokenHash,
  signingSecret: 'whsec_' + randomBytes(32).toString('base64'), djangoToken: null, protocol: 'fastify-sso',
  enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
})

for (const [label, autocheckpoint] of [['token insert, checkpoints on a timer (now)', false], ['token insert, checkpoint inside a commit (before)', true]]) {
  const store = new SqliteGatewayStore({ filename: join(dir, `${autocheckpoint}.sqlite`) })
  if (autocheckpoint) store.db.pragma('wal_autocheckpoint = 1000')
  await store.services.create(service('svc', 'hash'))
  const now = Date.now()
  await time(label, N, (i) => store.tokens.create({ hash: hashToken(`t${i}${label}`), serviceId: 'svc', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now }))
  await store.close()
}

{
  const store = new SqliteGatewayStore({ filename: join(dir, 'services.sqlite') })
  for (let i = 0; i < 20; i++) await store.services.create(service(`svc${i}`, `hash${i}`))
  await time('service by secret hash, cached (now)', N, () => store.services.byTokenHash('hash7'))
  const row = store.db.prepare('SELECT * FROM services WHERE token_hash = ?')
  await time('service by secret hash, a SELECT (before, without mapping the row)', N, () => row.get('hash7'))
  await store.close()
}

{
  const store = new SqliteGatewayStore({ filename: join(dir, 'get.sqlite') })
  await store.services.create(service('svc', 'hash'))
  await store.users.create({ id: 'usr_a', username: 'alice', passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: 'a@example.com', displayName: 'Alice', attributes: {} })
  const now = Date.now()
  await store.tokens.create({ hash: 'tok', serviceId: 'svc', nextUrl: '/x', prompt: null, expiresAt: now + 600_000, createdAt: now })
  await store.tokens.authenticate('tok', { userId: 'usr_a', ssoSession: 'sso_1', sessionEndsAt: now + 1000, authAt: now, codeHash: null, expiresAt: now + 600_000 }, now)
  await time('/sso/get/ reads: getWithUser, one statement (now)', N, () => store.tokens.getWithUser('tok', now))
  await time('/sso/get/ reads: token, user, groups (before)', N, async () => {
    const t = await store.tokens.get('tok', now)
    await store.users.byId(t.userId)
    await store.groups.ofUser(t.userId)
  })
  await store.close()
}

await time('token randomness, pooled (now)', N * 5, () => generateToken())
await time('token randomness, randomBytes per token (before)', N * 5, () => randomBytes(32).toString('base64url'))

rmSync(dir, { recursive: true, force: true })
console.log(JSON.stringify(out, null, 2))
