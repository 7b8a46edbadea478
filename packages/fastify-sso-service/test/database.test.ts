import { join } from 'node:path'
import { statSync } from 'node:fs'
import t from 'tap'
import { ServiceDatabase } from '../src/session.js'

t.test('the session database is in WAL mode with synchronous=NORMAL: commits wait for no fsync', async (t) => {
  const db = new ServiceDatabase(join(t.testdir({}), 'service.sqlite'))
  t.teardown(() => db.close())
  t.equal(db.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(db.db.pragma('synchronous', { simple: true }), 1, 'NORMAL')
})

t.test('WAL checkpoints run from a timer, not inside a session save', async (t) => {
  const file = join(t.testdir({}), 'service.sqlite')
  const db = new ServiceDatabase(file)
  t.teardown(() => db.close())
  t.equal(db.db.pragma('wal_autocheckpoint', { simple: true }), 0, 'no checkpoint inside a commit')
  const before = statSync(file).size
  const now = Date.now()
  for (let i = 0; i < 300; i++) {
    await db.store.set(`sid-${i}`.padEnd(32, '_'), { cookie: {}, user: 'alice', createdAt: now, seenAt: now } as never, { expiresAt: now + 60_000, user: 'alice', ssoSession: null })
  }
  // The timer (every second) copies the WAL back into the database file (bounded wait).
  const deadline = Date.now() + 30_000
  while (statSync(file).size === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(statSync(file).size > before, 'the sessions reached the database file by a background checkpoint')
})
