import t from 'tap'
import Database from 'better-sqlite3'
import type { AccountRemoveContext, AccountRenameContext, AccountsAdapter } from '../src/index.js'
import { audits, Browser, buildApp, sendEvent, signIn } from './helpers.js'

interface Local { userId: string | null, username: string, email: unknown }

/** Local accounts keyed by the gateway's user id when it is known. */
function accounts () {
  const rows: Local[] = []
  const renames: Array<Omit<AccountRenameContext, 'request' | 'log'>> = []
  const removes: Array<Omit<AccountRemoveContext, 'request' | 'log'>> = []
  const adapter: AccountsAdapter<Local> = {
    find: (ctx) => rows.find((r) => r.userId === (ctx.account.user_id ?? null) && r.userId !== null) ?? rows.find((r) => r.username === ctx.account.username),
    create: (ctx) => {
      const row = { userId: ctx.account.user_id ?? null, username: ctx.account.username, email: ctx.attributes.email }
      rows.push(row)
      return row
    },
    update: (ctx) => {
      const row = ctx.local as Local
      row.username = ctx.account.username
      row.email = ctx.attributes.email
      return row
    },
    rename: ({ source, userId, oldUsername, username }) => {
      renames.push({ source, userId, oldUsername, username })
      const row = rows.find((r) => r.userId === userId)
      if (row !== undefined) row.username = username
    },
    remove: ({ source, userId, username }) => {
      removes.push({ source, userId, username })
      rows.splice(rows.findIndex((r) => r.username === username), 1)
    }
  }
  return { rows, renames, removes, adapter }
}

const aliceUser = { user_id: 'u-1', username: 'alice', is_active: true, is_staff: false, is_superuser: false, email: 'a@example.com' }

function storedUsers (file: string): Array<{ user_key: string, user: string, account: string }> {
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare("SELECT user_key, data ->> '$.user' AS user, data ->> '$.account.username' AS account FROM sessions WHERE user_key IS NOT NULL ORDER BY user_key").all() as Array<{ user_key: string, user: string, account: string }>
  } finally {
    db.close()
  }
}

t.test('rename_account re-keys every session and the local account, never duplicating it', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { rows, renames, adapter } = accounts()
  const { app, gateway, logs } = await buildApp(t, { database: file, accounts: adapter })
  const a1 = new Browser(app)
  const a2 = new Browser(app)
  const bob = new Browser(app)
  await signIn(a1, gateway, { user: aliceUser, ssoSession: 's1' })
  await signIn(a2, gateway, { user: aliceUser, ssoSession: 's2' })
  await signIn(bob, gateway, { username: 'bob', user: { user_id: 'u-2', username: 'bob', is_active: true, is_staff: false, is_superuser: false } })
  t.equal(rows.length, 2)

  const res = await sendEvent(app, { type: 'rename_account', user_id: 'u-1', username: 'alicia', old_username: 'alice' })
  t.equal(res.statusCode, 200)
  t.same(renames, [{ source: 'event', userId: 'u-1', oldUsername: 'alice', username: 'alicia' }])
  t.same(storedUsers(file), [
    { user_key: 'alicia', user: 'alicia', account: 'alicia' },
    { user_key: 'alicia', user: 'alicia', account: 'alicia' },
    { user_key: 'bob', user: 'bob', account: 'bob' }
  ], 'index and stored snapshot both follow')
  for (const b of [a1, a2]) t.match((await b.request('/sso/test/')).json().user, { username: 'alicia', userId: 'u-1', email: 'a@example.com' })
  t.match((await bob.request('/sso/test/')).json().user, { username: 'bob' })
  t.match(audits(logs, 'account_renamed'), [{ user: 'alicia', oldUsername: 'alice', sessionsMoved: 2, handled: true }])

  // The next sign-in under the new name finds the same local account.
  await signIn(new Browser(app), gateway, { username: 'alicia', user: { ...aliceUser, username: 'alicia' } })
  t.same(rows.map((r) => r.username).sort(), ['alicia', 'bob'], 'one local account, re-keyed')

  // Logging the user out by the new name reaches the moved sessions.
  t.equal(await app.ssoService.logoutUser('alicia'), 3)
  t.equal(await app.ssoService.logoutUser('alice'), 0)
})

t.test('an update_account sent before the rename, arriving after it, is ignored', async (t) => {
  const { rows, adapter } = accounts()
  const { app, logs } = await buildApp(t, { accounts: adapter })
  const now = Math.floor(Date.now() / 1000)
  await sendEvent(app, { type: 'update_account', ...aliceUser }, { timestamp: now - 10 })
  await sendEvent(app, { type: 'rename_account', user_id: 'u-1', username: 'alicia', old_username: 'alice' }, { timestamp: now - 5 })
  await sendEvent(app, { type: 'update_account', ...aliceUser, email: 'old@example.com' }, { timestamp: now - 8 })
  t.same(rows, [{ userId: 'u-1', username: 'alicia', email: 'a@example.com' }])
  t.equal(audits(logs, 'event_stale').length, 1)
})

t.test('a rename the service missed is repaired when the user id comes back under a new name', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { rows, renames, adapter } = accounts()
  const { app, gateway } = await buildApp(t, { database: file, accounts: adapter })
  const old = new Browser(app)
  await signIn(old, gateway, { user: aliceUser })
  await sendEvent(app, { type: 'update_account', ...aliceUser, username: 'alicia' })
  t.same(renames, [{ source: 'event', userId: 'u-1', oldUsername: 'alice', username: 'alicia' }])
  t.same(rows, [{ userId: 'u-1', username: 'alicia', email: 'a@example.com' }])
  t.match((await old.request('/sso/test/')).json().user, { username: 'alicia' })
  await signIn(new Browser(app), gateway, { username: 'ally', user: { ...aliceUser, username: 'ally' } })
  t.match(renames[1], { source: 'sign-in', oldUsername: 'alicia', username: 'ally' })
  t.equal(rows.length, 1)
  t.same(storedUsers(file).map((r) => r.user_key), ['ally', 'ally'])
})

t.test('rename_account without an adapter, without rename, or failing', async (t) => {
  await t.test('no adapter: sessions still move', async (t) => {
    const { app, gateway, logs } = await buildApp(t)
    const b = new Browser(app)
    await signIn(b, gateway)
    t.equal((await sendEvent(app, { type: 'rename_account', user_id: 'u-1', username: 'alicia', old_username: 'alice' })).statusCode, 200)
    t.match((await b.request('/sso/test/')).json().user, { username: 'alicia' })
    t.match(audits(logs, 'account_renamed'), [{ handled: false }])
  })
  await t.test('no user_id (a django-sso gateway knows none): the sessions of the old name move', async (t) => {
    const { app, gateway } = await buildApp(t)
    const b = new Browser(app)
    await signIn(b, gateway, { user: null, ssoSession: null })
    t.equal((await sendEvent(app, { type: 'rename_account', username: 'alicia', old_username: 'alice' })).statusCode, 200)
    t.match((await b.request('/sso/test/')).json().user, { username: 'alicia', userId: null })
  })
  await t.test('missing old_username: 400', async (t) => {
    const { app } = await buildApp(t)
    const res = await sendEvent(app, { type: 'rename_account', username: 'alicia', user_id: 'u-1' })
    t.equal(res.statusCode, 400)
    t.match(res.json().error, /old_username/)
  })
  await t.test('rename throws: 500, retried, applied once', async (t) => {
    let fail = true
    let calls = 0
    const { app } = await buildApp(t, { accounts: { find: () => null, create: () => ({}), update: () => {}, rename: () => { calls++; if (fail) throw new Error('x') } } })
    const event = { type: 'rename_account', user_id: 'u-1', username: 'alicia', old_username: 'alice' }
    const res = await sendEvent(app, event, { id: 'r1' })
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED')
    fail = false
    t.equal((await sendEvent(app, event, { id: 'r1' })).statusCode, 200)
    t.equal((await sendEvent(app, event, { id: 'r1' })).statusCode, 200)
    t.equal(calls, 2)
  })
})

t.test('delete_account ends the sessions and lets the app remove the local account', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const { rows, removes, adapter } = accounts()
  const { app, gateway, logs } = await buildApp(t, { database: file, accounts: adapter })
  const a = new Browser(app)
  await signIn(a, gateway, { user: aliceUser })
  const res = await sendEvent(app, { type: 'delete_account', user_id: 'u-1', username: 'alice' }, { id: 'd1' })
  t.equal(res.statusCode, 200)
  t.same(removes, [{ source: 'event', userId: 'u-1', username: 'alice' }])
  t.same(rows, [])
  t.equal((await a.request('/sso/test/')).statusCode, 302)
  t.match(audits(logs, 'account_deleted'), [{ user: 'alice', sessionsEnded: 1, handled: true }])
  t.equal((await sendEvent(app, { type: 'delete_account', user_id: 'u-1', username: 'alice' }, { id: 'd1' })).statusCode, 200)
  t.equal(removes.length, 1, 'applied once')
  const late = await sendEvent(app, { type: 'update_account', ...aliceUser }, { timestamp: Math.floor(Date.now() / 1000) - 60 })
  t.equal(late.statusCode, 200)
  t.same(rows, [], 'a late update_account does not bring the account back')
})

t.test('delete_account: a deleted user known under an older name loses those sessions too; remove failures are retried', async (t) => {
  let fail = true
  const { app, gateway } = await buildApp(t, { accounts: { find: () => null, create: () => ({}), update: () => {}, remove: () => { if (fail) throw new Error('x') } } })
  const a = new Browser(app)
  await signIn(a, gateway, { user: aliceUser })
  const res = await sendEvent(app, { type: 'delete_account', user_id: 'u-1', username: 'alicia' }, { id: 'd2' })
  t.equal(res.statusCode, 500)
  t.equal((await a.request('/sso/test/')).statusCode, 302, 'sessions end before the app hook runs')
  fail = false
  t.equal((await sendEvent(app, { type: 'delete_account', user_id: 'u-1', username: 'alicia' }, { id: 'd2' })).statusCode, 200)
  const { app: app2 } = await buildApp(t)
  t.equal((await sendEvent(app2, { type: 'delete_account', username: 'carol' })).statusCode, 200, 'no adapter, no user id')
})

t.test('deauthenticate passes reason and user id to onDeauthenticate', async (t) => {
  const seen: Array<[string | null, string | null, string | null]> = []
  const { app } = await buildApp(t, { onDeauthenticate: (_u, ctx) => { seen.push([ctx.reason, ctx.userId, ctx.ssoSession]) } })
  await sendEvent(app, { type: 'deauthenticate', username: 'alice', user_id: 'u-1', reason: 'password_changed' })
  await sendEvent(app, { type: 'deauthenticate', username: 'alice', sso_session: 's1', reason: 'expired' })
  t.same(seen, [['password_changed', 'u-1', null], ['expired', null, 's1']])
})
