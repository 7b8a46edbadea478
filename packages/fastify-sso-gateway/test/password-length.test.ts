import t from 'tap'
import { buildApp } from './helpers.js'

// Risk: no minimum password length. NIST SP 800-63B-4: at least 15 characters for a password
// that is the only factor; an app may lower it to 8 (never below).

t.test('passwords shorter than minPasswordLength are refused wherever one is set', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const api = app.ssoGateway
  await t.rejects(api.createUser({ username: 'bob', password: 'fourteen chars' }), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD', message: /at least 15 characters/ })
  await api.createUser({ username: 'bob', password: 'fifteen chars!!' })
  await t.rejects(api.updateUser('bob', { password: 'short' }), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD' })
  await t.rejects(api.changePassword('bob', 'short'), { code: 'FST_SSO_GATEWAY_INVALID_PASSWORD' })
  await t.rejects(api.createUser({ username: 'carol', password: '😀'.repeat(14) }), { message: /at least 15/ }, 'counted in characters, not UTF-16 units')
  await api.createUser({ username: 'dave' })
  t.pass('an account without a password is still possible')
})

t.test('minPasswordLength can be set from 8 up; lower is refused at register', async (t) => {
  const { app } = await buildApp({ minPasswordLength: 8 })
  t.teardown(() => app.close())
  await app.ssoGateway.createUser({ username: 'bob', password: 'eight ch' })
  await t.rejects(buildApp({ minPasswordLength: 7 }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION', message: /minPasswordLength/ })
  await t.rejects(buildApp({ minPasswordLength: 'long' as never }), { code: 'FST_SSO_GATEWAY_INVALID_OPTION' })
})
