import Database from 'better-sqlite3'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { checkpointInBackground } from '../src/index.js'

t.test('checkpointInBackground: no checkpoint inside a commit; the WAL reaches the file from a timer; stops on request', async (t) => {
  const file = join(t.testdir({}), 'db.sqlite')
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE x (a INTEGER PRIMARY KEY, b TEXT)')
  db.pragma('wal_checkpoint(TRUNCATE)')
  const stop = checkpointInBackground(db, 20)
  t.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0, 'automatic checkpoints are off')
  const before = statSync(file).size
  const insert = db.prepare('INSERT INTO x (b) VALUES (?)')
  for (let i = 0; i < 2000; i++) insert.run('y'.repeat(100))
  t.equal(statSync(file).size, before, 'the commits themselves copied nothing into the file')
  const deadline = Date.now() + 30_000
  while (statSync(file).size === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(statSync(file).size > before, 'a background checkpoint copied the WAL into the file')

  // Closed under the timer: it skips the closed database instead of throwing; then stopped.
  db.close()
  await new Promise((resolve) => setTimeout(resolve, 60))
  stop()
  t.pass('a closed database is skipped')
})
