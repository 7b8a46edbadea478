import t from 'tap'
import { djangoEventBody, mergeFields, normalizeEvent } from '../src/index.js'
import type { SsoEvent } from '../src/index.js'

// What a django-sso service of each release takes (../../shared/peers/django-sso.md), and that
// a service reading any dialect gets back the same canonical event.
const update: SsoEvent = {
  type: 'update_account', user_id: 'usr_1', username: 'alice', is_active: true, is_staff: true, is_superuser: false,
  email: 'a@example.com', display_name: 'Alice', groups: ['staff'], changed: ['email']
}
const deauth: SsoEvent = { type: 'deauthenticate', username: 'alice', user_id: 'usr_1', sso_session: 'g1', reason: 'logout' }
const rename: SsoEvent = { type: 'rename_account', user_id: 'usr_1', username: 'alicia', old_username: 'alice' }
const remove: SsoEvent = { type: 'delete_account', user_id: 'usr_1', username: 'alice' }

t.test('django-sso 1.x: exactly the four keys of update_account, username alone in deauthenticate', async (t) => {
  t.same(djangoEventBody('django-sso-1', update), { type: 'update_account', username: 'alice', is_active: true, is_staff: true, is_superuser: false })
  t.same(djangoEventBody('django-sso-1', deauth), { type: 'deauthenticate', username: 'alice' }, 'no sso_session, reason or user_id')
  t.same(djangoEventBody('django-sso-1', rename), { type: 'update_account', username: 'alice', is_active: false },
    'a rename disables the old local account (1.x knows no rename)')
  t.same(djangoEventBody('django-sso-1', remove), { type: 'update_account', username: 'alice', is_active: false },
    'a deletion disables the local account (1.x knows no deletion)')
})

t.test('django-sso 2.x/3.x: fields object, user_identy, change_user_identy, delete_user', async (t) => {
  t.same(djangoEventBody('django-sso-2', update), {
    type: 'update_account',
    fields: { user_identy: 'alice', is_active: true, is_staff: true, is_superuser: false, email: 'a@example.com', display_name: 'Alice', groups: ['staff'] }
  }, 'no user_id, changed or username key')
  t.same(djangoEventBody('django-sso-2', deauth), { type: 'deauthenticate', user_identy: 'alice' })
  t.same(djangoEventBody('django-sso-2', rename), { type: 'change_user_identy', old: 'alice', new: 'alicia' })
  t.same(djangoEventBody('django-sso-2', remove), { type: 'delete_user', user_identy: 'alice' })
})

t.test('normalizeEvent reads every dialect back into the canonical shape', async (t) => {
  t.same(normalizeEvent({ ...update, token: 'secret' }), update, 'fastify-sso: as sent, without the token')
  t.same(normalizeEvent({ ...djangoEventBody('django-sso-1', update), token: 's' }),
    { type: 'update_account', username: 'alice', is_active: true, is_staff: true, is_superuser: false })
  t.same(normalizeEvent(djangoEventBody('django-sso-2', update)),
    { type: 'update_account', username: 'alice', is_active: true, is_staff: true, is_superuser: false, email: 'a@example.com', display_name: 'Alice', groups: ['staff'] })
  t.match(normalizeEvent(djangoEventBody('django-sso-2', deauth)), { type: 'deauthenticate', username: 'alice' })
  t.same(normalizeEvent(djangoEventBody('django-sso-2', rename)), { type: 'rename_account', username: 'alicia', old_username: 'alice' }, 'no user_id from django-sso')
  t.match(normalizeEvent(djangoEventBody('django-sso-2', remove)), { type: 'delete_account', username: 'alice' })
  t.same(normalizeEvent({ ...rename }), rename)
  t.same(normalizeEvent({ ...remove }), remove)
  t.same(normalizeEvent({ type: 'update_fields', fields: { team: 'x', user_identy: 'ignored', user_id: 'ignored' }, user_identities: ['alice', 'bob'] }),
    { type: 'update_fields', fields: { team: 'x' }, usernames: ['alice', 'bob'] }, 'identities are not fields')
})

t.test('normalizeEvent names what is missing', async (t) => {
  t.throws(() => normalizeEvent({ type: 'update_account' }), /update_account needs username or fields/)
  t.throws(() => normalizeEvent({ type: 'update_account', fields: { is_active: true } }), /fields\.user_identy must be a username/)
  t.throws(() => normalizeEvent({ type: 'update_account', fields: { user_identy: 'x'.repeat(151) } }), /1 to 150 characters/)
  t.throws(() => normalizeEvent({ type: 'update_fields', user_identities: ['a'] }), /update_fields needs fields/)
  t.throws(() => normalizeEvent({ type: 'update_fields', fields: {} }), /update_fields needs user_identities/)
  t.throws(() => normalizeEvent({ type: 'update_fields', fields: {}, user_identities: [] }), /update_fields needs user_identities/)
  t.throws(() => normalizeEvent({ type: 'update_fields', fields: {}, user_identities: [3] }), /user_identities\[\] must be a username/)
  t.throws(() => normalizeEvent({ type: 'deauthenticate' }), /username must be a username/)
  t.throws(() => normalizeEvent({ type: 'rename_account', username: 'b' }), /old_username must be/)
  t.throws(() => normalizeEvent({ type: 'change_user_identy', old: 'a' }), /new must be/)
})

t.test('mergeFields: an update_fields changes only the fields it names, never the username', async (t) => {
  const base = { username: 'alice', is_active: true, is_staff: true, is_superuser: false, team: 'a' }
  t.same(mergeFields(base, { team: 'b', username: 'mallory' }), { ...base, team: 'b' })
})
