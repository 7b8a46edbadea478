import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { SqliteGatewayStore } from '../src/index.js'

// Services registered before the django-sso dialects existed are stored as 'django-sso': they
// spoke the 1.x wire and read back as 'django-sso-1'.
t.test('a stored django-sso row reads as django-sso-1', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const store = new SqliteGatewayStore({ filename: file })
  t.teardown(() => store.close())
  await store.services.create({
    id: 'svc_old', name: 'old', baseUrl: 'http://old.test', eventUrl: 'http://old.test/sso/event/', tokenHash: 'h', signingSecret: 's',
    djangoToken: 't', protocol: 'django-sso-1', enabled: true, freshLogin: false, access: null, fields: null
  })
  const raw = new Database(file)
  raw.prepare("UPDATE services SET protocol = 'django-sso' WHERE id = 'svc_old'").run()
  raw.close()
  t.equal((await store.services.byId('svc_old'))?.protocol, 'django-sso-1')
})
