import type { Test } from 'tap'
import type { Session } from 'fastify'
import type { SessionIndex, SsoAccount } from 'fastify-sso-protocol'
import type { ServiceSessionStore } from '../src/index.js'
import type { ServiceState } from '../src/session.js'

export type Data = Record<string, unknown> & { user?: string, sso?: string, expiresAt?: number, n?: number }

/** A time in the near future: Redis expires keys on its own clock, so tests use real times. */
const HOUR = 3_600_000

// The index used here reads plain fields, so each test controls expiry exactly.
const index = (s: Data): SessionIndex => ({
  user: typeof s.user === 'string' ? s.user : null,
  ssoSession: typeof s.sso === 'string' ? s.sso : null,
  expiresAt: typeof s.expiresAt === 'number' ? s.expiresAt : Date.now() + HOUR
})

/** Helpers over a store: set/get plain data, count a user's live sessions. */
export function over (store: ServiceSessionStore) {
  const set = async (sid: string, s: Data): Promise<void> => { await store.set(sid, s as unknown as Session, index(s)) }
  const get = async (sid: string): Promise<unknown> => await store.get(sid, Date.now())
  const users = async (user: string): Promise<number> => (await store.listByUser(user, Date.now())).length
  return { store, set, get, users }
}

/**
 * What every ServiceSessionStore must do (SQLite, Redis): run by session-store.test.ts against
 * each. `open()` gives a fresh, empty store.
 */
export function sessionStoreSuite (t: Test, open: (t: Test) => ServiceSessionStore): void {
  t.test('set / get / destroy', async (t) => {
    const { store, get, set, users } = over(open(t))
    t.equal(await get('nope'), null)
    await set('a', { user: 'alice', n: 1 })
    t.same(await get('a'), { user: 'alice', n: 1 })
    await set('a', { user: 'alice', n: 2 })
    t.same(await get('a'), { user: 'alice', n: 2 }, 'replaced')
    await store.destroy('a')
    t.equal(await get('a'), null)
    await store.destroy('a')
    t.equal(await users('alice'), 0)
  })

  t.test('an ended session is never written back: a late save of a request in flight writes nothing', async (t) => {
    const { store, get, set } = over(open(t))
    await set('a', { user: 'alice', sso: 'g1' })
    await set('b', { user: 'alice', sso: 'g2' })
    await set('c', { user: 'bob', sso: 'g3' })
    await set('d', { user: 'carol' })
    t.equal(await store.destroyBySsoSession('g1'), 1)
    t.equal(await store.destroyByUser('alice'), 1)
    await store.destroy('c')
    await set('a', { user: 'alice', sso: 'g1', n: 1 })
    await set('b', { user: 'alice', sso: 'g2', n: 1 })
    await set('c', { user: 'bob', sso: 'g3', n: 1 })
    t.equal(await get('a'), null, 'ended with its SSO session: not resurrected')
    t.equal(await get('b'), null, 'ended with its user: not resurrected')
    t.equal(await get('c'), null, 'destroyed (logout): not resurrected')
    t.same(await get('d'), { user: 'carol' }, 'others untouched')
    await set('e', { user: 'alice', sso: 'g1' })
    t.same(await get('e'), { user: 'alice', sso: 'g1' }, 'a new session id is a new session')
  })

  t.test('expired sessions are neither returned nor listed', async (t) => {
    const { get, set, users } = over(open(t))
    const now = Date.now()
    await set('old', { user: 'alice', expiresAt: now - 1 })
    await set('new', { user: 'alice', expiresAt: now + HOUR })
    t.equal(await get('old'), null)
    t.same(await get('new'), { user: 'alice', expiresAt: now + HOUR })
    t.equal(await users('alice'), 1)
  })

  t.test('destroyByUser and destroyBySsoSession end exactly the right sessions; listByUser lists live ones', async (t) => {
    const { store, set, users } = over(open(t))
    await set('a1', { user: 'alice', sso: 'g1' })
    await set('a2', { user: 'alice', sso: 'g2' })
    await set('d1', { user: 'dave', sso: 'g4', expiresAt: Date.now() - 1 })
    await set('b1', { user: 'bob', sso: 'g3' })
    t.equal(await users('alice'), 2)
    t.equal(await users('dave'), 0, 'expired not listed')
    t.equal(await store.destroyBySsoSession('g2'), 1)
    t.equal(await users('alice'), 1)
    t.equal(await store.destroyByUser('alice'), 1)
    t.equal(await store.destroyByUser('alice'), 0)
    t.equal(await users('bob'), 1)
  })

  t.test('a session that changes user or SSO session moves in both indexes', async (t) => {
    const { store, set, get, users } = over(open(t))
    await set('s', { user: 'alice', sso: 'g1' })
    await set('s', { user: 'bob', sso: 'g2' })
    t.equal(await users('alice'), 0)
    t.equal(await store.destroyBySsoSession('g1'), 0, 'no longer under its old SSO session')
    t.equal(await store.destroyBySsoSession('g2'), 1)
    t.equal(await get('s'), null)
    await set('anon', { n: 1 })
    await set('anon', { user: 'carol', n: 2 })
    t.equal(await users('carol'), 1, 'an anonymous session that signs in joins the index')
    await set('anon', { n: 3, expiresAt: Date.now() - 1 })
    t.equal(await get('anon'), null, 'saved already expired: gone')
    t.equal(await users('carol'), 0)
  })

  t.test('issuedBefore: only sessions issued at or before it end (or without issuedAt); the ones it ends are not written back', async (t) => {
    const { store, get, set } = over(open(t))
    await set('early', { user: 'alice', sso: 'g1', issuedAt: 100 })
    await set('at', { user: 'alice', sso: 'g2', issuedAt: 200 })
    await set('late', { user: 'alice', sso: 'g1', issuedAt: 300 })
    await set('untimed', { user: 'alice', sso: 'g2' })
    t.equal(await store.destroyBySsoSession('g1', 200), 1, 'g1: only the one issued before')
    t.equal(await get('early'), null)
    t.same(await get('late'), { user: 'alice', sso: 'g1', issuedAt: 300 }, 'a sign-in after the sign-out survives it')
    t.equal(await store.destroyByUser('alice', 200), 2, 'at the instant, and the one without a time')
    t.equal(await get('at'), null)
    t.equal(await get('untimed'), null)
    t.match(await get('late'), { issuedAt: 300 })
    await set('early', { user: 'alice', sso: 'g1', issuedAt: 100, n: 1 })
    t.equal(await get('early'), null, 'ended: a late save writes nothing')
    await set('late', { user: 'alice', sso: 'g1', issuedAt: 300, n: 1 })
    t.match(await get('late'), { n: 1 }, 'the survivor is still saved')
    t.equal(await store.destroyByUser('alice'), 1, 'without issuedBefore: all')
  })

  t.test('rekeyUser moves a user\'s sessions to a new name, index and data', async (t) => {
    const { store, get, set, users } = over(open(t))
    await set('a1', { user: 'alice', sso: 'g1', n: 1 })
    await set('a2', { user: 'alice', n: 2, account: { username: 'alice', team: 'x' } })
    await set('b1', { user: 'bob', n: 3 })
    t.equal(await store.rekeyUser('alice', 'alicia'), 2)
    t.same(await get('a1'), { user: 'alicia', sso: 'g1', n: 1 }, 'the data follows ($.user by default)')
    t.equal(await users('alice'), 0)
    t.equal(await users('alicia'), 2)
    t.same(await get('b1'), { user: 'bob', n: 3 }, 'other users untouched')
    t.equal(await store.rekeyUser('alicia', 'ally', ['$.user', '$.account.username']), 2)
    t.same(await get('a2'), { user: 'ally', n: 2, account: { username: 'ally', team: 'x' } }, 'nested fields too')
    t.same(await get('a1'), { user: 'ally', sso: 'g1', n: 1, account: { username: 'ally' } }, 'a missing object on the path is created (as json_set)')
    await set('odd', { user: 'ally', account: 'text', list: [] })
    t.equal(await store.rekeyUser('ally', 'al', ['$.user', '$.account.username', '$.list.x']), 3)
    t.same(await get('odd'), { user: 'al', account: 'text', list: [] }, 'a path through a non-object is left alone')
    t.equal(await store.rekeyUser('al', 'ally', ['$.user', '$.account.username']), 3)
    t.equal(await store.rekeyUser('alicia', 'x', ['$.user', '$.account.username']), 0, 'nobody left under the old name')
    t.equal(await store.destroyBySsoSession('g1'), 1, 'the SSO-session index still finds a moved session')
    t.equal(await store.destroyByUser('ally'), 2, 'the index follows')
    t.equal(await store.rekeyUser('nobody', 'x'), 0)
    await t.rejects(store.rekeyUser('a', 'b', []), TypeError)
    await t.rejects(store.rekeyUser('a', 'b', ['$.user\'); DROP TABLE sessions; --']), TypeError, 'paths are checked, never pasted')
    await t.rejects(store.rekeyUser('a', 'b', ['user']), TypeError)
  })

  t.test('rekeyUser with `only` moves one user\'s sessions, not those of another user who held the name', async (t) => {
    const { store, set, get, users } = over(open(t))
    // Two users swapped names; the rename of usr_B (bob -> alice) was applied first.
    await set('a1', { user: 'alice', account: { user_id: 'usr_A', username: 'alice' } })
    await set('b1', { user: 'alice', account: { user_id: 'usr_B', username: 'alice' } })
    await set('legacy', { user: 'alice' })
    t.equal(await store.rekeyUser('alice', 'carol', ['$.user', '$.account.username'], { path: '$.account.user_id', value: 'usr_A' }), 2,
      'usr_A\'s session and one that records no id')
    t.match(await get('a1'), { user: 'carol', account: { user_id: 'usr_A', username: 'carol' } })
    t.match(await get('b1'), { user: 'alice', account: { user_id: 'usr_B', username: 'alice' } }, 'usr_B keeps the name it now holds')
    t.match(await get('legacy'), { user: 'carol' })
    t.same(await users('alice'), 1)
    await t.rejects(store.rekeyUser('a', 'b', ['$.user'], { path: "$.x') OR 1=1 --", value: 'v' }), TypeError, 'only plain JSON paths')
  })

  t.test('JSON survives the round trip exactly (empty arrays and objects, big numbers, unicode)', async (t) => {
    const { set, get } = over(open(t))
    const data = { user: 'zoë', list: [], obj: {}, n: 1764633600123, f: 0.1, s: 'line\u2028sep "quoted"' }
    await set('j', data)
    t.same(await get('j'), data)
  })
}

/** What every ServiceState must keep besides sessions: event ids, account versions, user ids, accounts. */
export function serviceStateSuite (t: Test, open: (t: Test) => ServiceState): void {
  t.test('event ids: an applied event is remembered', async (t) => {
    const db = open(t)
    t.equal(await db.isProcessed('msg_1'), false)
    await db.recordEvent('msg_1')
    t.equal(await db.isProcessed('msg_1'), true)
    await db.recordEvent(null, ['alice'], null)
    t.equal(await db.lastAccountTimestamp('alice'), -1, 'no timestamp: no version')
  })

  t.test('account versions only move forward', async (t) => {
    const db = open(t)
    t.equal(await db.lastAccountTimestamp('alice'), -1)
    await db.recordEvent('e1', ['alice', 'bob'], 100)
    t.equal(await db.lastAccountTimestamp('alice'), 100)
    await db.recordEvent('e2', ['alice'], 50)
    t.equal(await db.lastAccountTimestamp('alice'), 100, 'an older one does not go back')
    await db.recordEvent('e3', ['alice'], 150)
    t.equal(await db.lastAccountTimestamp('alice'), 150)
    t.equal(await db.lastAccountTimestamp('bob'), 100)
  })

  t.test('usernames by user id', async (t) => {
    const db = open(t)
    t.equal(await db.usernameOf('usr_1'), null)
    await db.rememberUser('usr_1', 'alice')
    t.equal(await db.usernameOf('usr_1'), 'alice')
    await db.rememberUser('usr_1', 'alicia')
    t.equal(await db.usernameOf('usr_1'), 'alicia')
    await db.rememberUser('usr_1', null)
    t.equal(await db.usernameOf('usr_1'), null)
  })

  t.test('known accounts: remember, rename, forget', async (t) => {
    const db = open(t)
    const account: SsoAccount = { username: 'alice', is_active: true, is_staff: true, is_superuser: false, groups: [], email: 'a@example.test' }
    t.same(await db.knownAccount('alice'), { username: 'alice', is_active: true, is_staff: false, is_superuser: false }, 'defaults')
    t.equal(await db.lastAccount('alice'), null)
    await db.rememberAccount('alice', account)
    t.same(await db.lastAccount('alice'), account)
    t.same(await db.knownAccount('alice'), account)
    await db.renameAccount('alice', 'alicia')
    t.equal(await db.lastAccount('alice'), null)
    t.same(await db.lastAccount('alicia'), { ...account, username: 'alicia' })
    await db.renameAccount('nobody', 'x')
    t.equal(await db.lastAccount('x'), null)
    await db.rememberAccount('alicia', null)
    t.equal(await db.lastAccount('alicia'), null)
  })

  t.test('prune leaves live data', async (t) => {
    const db = open(t)
    await db.recordEvent('e1', ['alice'], 100)
    await db.prune()
    t.equal(await db.isProcessed('e1'), true)
  })
}
