import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { SqliteGatewayStore } from '../src/index.js'

t.test("a service row written before the dialects existed ('django-sso') reads as django-sso 1.x", async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const store = new SqliteGatewayStore({ filename: file })
  await store.services.create({
    id: 'svc_legacy', name: 'legacy', baseUrl: 'http://legacy.test', eventUrl: 'http://legacy.test/sso/event/', tokenHash: 'h',
    signingSecret: 'whsec_' + Buffer.alloc(32).toString('base64'), djangoToken: 't'.repeat(40), protocol: 'django-sso-1',
    enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
  })
  await store.close()
  const db = new Database(file)
  db.prepare("UPDATE services SET protocol = 'django-sso' WHERE id = 'svc_legacy'").run()
  db.close()
  const reopened = new SqliteGatewayStore({ filename: file })
  t.teardown(() => reopened.close())
  t.equal((await reopened.services.byName('legacy'))?.protocol, 'django-sso-1')
})
