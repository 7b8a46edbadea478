// Service-side logout scale, in-process part. Fills a fresh service session database
// (the same table and indexes fastify-sso-service creates, through SqliteSessionStore)
// with `others` sessions of other users in one transaction, adds `targets` users with 3
// sessions each through the store itself, then times destroyByUser for the first half of
// the targets, and one full-scan delete (what django-sso does) for comparison.
//
// usage: node scale.mjs <file> <others> <targets>   (prints one JSON line)
import { statSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import { sessionIndexer } from 'fastify-sso-protocol'
import { SqliteSessionStore } from 'fastify-sso-service'

const [file, othersArg, targetsArg] = process.argv.slice(2)
const others = Number(othersArg)
const targets = Number(targetsArg)
const lifetime = { idleTimeout: 30 * 60_000, absoluteTimeout: 12 * 60 * 60_000 }

// As fastify-sso-service opens its database.
const db = new Database(file)
db.pragma('journal_mode = WAL')
db.pragma('busy_timeout = 5000')
const store = new SqliteSessionStore({ db })

const now = Date.now()
const session = (user, i) => ({
  cookie: { originalMaxAge: null, expires: null, secure: true, httpOnly: true, path: '/', sameSite: 'lax' },
  user,
  sso: `sso_${i.toString(36).padStart(24, '0')}`,
  account: { username: user, is_active: true, is_staff: false, is_superuser: false, email: `${user}@example.com`, display_name: null },
  createdAt: now,
  seenAt: now,
  _csrf: 'Qx3p0c7mN1hQbq2Wv9Zt4Aa'
})
const index = sessionIndexer(lifetime)
const sid = (i) => 'o' + i.toString(36).padStart(31, '_')

const t0 = performance.now()
const insert = db.prepare('INSERT INTO sessions (sid, data, expires_at, user_key, sso_session) VALUES (?, ?, ?, ?, ?)')
db.transaction(() => {
  for (let i = 0; i < others; i++) {
    const s = session(`user${i % Math.max(1, Math.floor(others / 2))}`, i) // two sessions per other user
    const ix = index(s)
    insert.run(sid(i), JSON.stringify(s), ix.expiresAt, ix.user, ix.ssoSession)
  }
})()
const fillMs = performance.now() - t0

const targetNames = Array.from({ length: targets }, (_, t) => `target${t}`)
for (const [t, name] of targetNames.entries()) {
  for (let k = 0; k < 3; k++) {
    const s = session(name, others + t * 3 + k)
    await store.set(`t-${t}-${k}`.padEnd(32, '_'), s, index(s))
  }
}
db.pragma('wal_checkpoint(TRUNCATE)')

const direct = []
for (const name of targetNames.slice(0, Math.ceil(targets / 2))) {
  const a = performance.now()
  const ended = await store.destroyByUser(name)
  direct.push(performance.now() - a)
  if (ended !== 3) throw new Error(`${name}: ended ${ended} sessions, expected 3`)
}
direct.sort((a, b) => a - b)

// What a store without a user index has to do: look at every row.
const a = performance.now()
const scanned = db.prepare("DELETE FROM sessions WHERE data LIKE '%\"user\":\"user1\"%'").run().changes
const scanMs = performance.now() - a

const rows = db.prepare('SELECT count(*) AS n FROM sessions').get().n
db.close()
process.stdout.write(JSON.stringify({
  others, rows, fillMs, fileBytes: statSync(file).size,
  destroyByUser: { count: direct.length, p50: direct[Math.floor(direct.length / 2)], max: direct[direct.length - 1] },
  fullScanMs: scanMs, fullScanEnded: scanned,
  httpTargets: targetNames.slice(Math.ceil(targets / 2))
}) + '\n')
