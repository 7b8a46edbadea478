import t from 'tap'
import { buildApp, sendEvent } from './helpers.js'

// Risk: usernames with U+2028/U+2029 (from a gateway that allows them) were logged raw; some log
// viewers break lines there, so one record could pass for two.

t.test('usernames in the service logs have line and paragraph separators escaped', async (t) => {
  const { app, logs } = await buildApp(t)
  const name = 'eve\u2028{"audit":"login","user":"admin"}\u2029'
  t.equal((await sendEvent(app, { type: 'deauthenticate', username: name })).statusCode, 200)
  t.equal((await sendEvent(app, { type: 'update_account', username: name, user_id: 'u1', is_active: false })).statusCode, 200)
  const records = logs.filter((l) => l.audit === 'deauthenticate' || l.audit === 'account_updated')
  t.equal(records.length, 2)
  for (const r of records) t.equal(r.user, 'eve\\u2028{"audit":"login","user":"admin"}\\u2029')
  t.notOk(JSON.stringify(logs).includes('\u2028'), 'no raw separator anywhere')
})
