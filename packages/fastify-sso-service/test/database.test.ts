import { join } from 'node:path'
import t from 'tap'
import { ServiceDatabase } from '../src/session.js'

t.test('the session database is in WAL mode with synchronous=NORMAL: commits wait for no fsync', async (t) => {
  const db = new ServiceDatabase(join(t.testdir({}), 'service.sqlite'))
  t.teardown(() => db.close())
  t.equal(db.db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(db.db.pragma('synchronous', { simple: true }), 1, 'NORMAL')
})
