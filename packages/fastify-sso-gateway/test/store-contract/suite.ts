// The store contract, as one suite every GatewayStore implementation runs (memory.test.ts,
// sqlite.test.ts here; a PostgreSQL store runs the same). It checks behaviour through the
// contract only: every method, every request-token transition, the atomic change+events pairs
// (a failure injected in the event write leaves neither), concurrency (one winner) and expiry.
import type { Test } from 'tap'
import type { Session } from 'fastify'
import type { GatewayStore, NewOutboxEvent, NewService, NewUser, TokenAuthentication } from '../../src/index.js'

export type MakeStore = (t: Test) => Promise<GatewayStore>

const user = (id: string, username = id): NewUser => ({
  id, username, passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {}
})
const service = (id: string, name = id): NewService => ({
  id, name, baseUrl: `http://${name}.test`, eventUrl: `http://${name}.test/sso/event/`, tokenHash: `hash-${id}`, signingSecret: 'whsec_x',
  djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
})
const event = (id: string, serviceId = 'svc_a', userKey = 'usr_1'): NewOutboxEvent => ({ id, serviceId, userKey, payload: JSON.stringify({ id }) })
const by = (ssoSession: string, now: number, extra: Partial<TokenAuthentication> = {}): TokenAuthentication => ({
  userId: 'usr_1', ssoSession, sessionEndsAt: now + 3_600_000, authAt: now, codeHash: null, expiresAt: now + 60_000, ...extra
})
/** A browser session as @fastify/session hands it to the store. */
const session = (user: string, sso: string, extra: Record<string, unknown> = {}): Session =>
  ({ cookie: { originalMaxAge: null }, user, sso, createdAt: Date.now(), seenAt: Date.now(), ...extra }) as Session
const index = (user: string | null, sso: string | null, expiresAt: number) => ({ user, ssoSession: sso, expiresAt })

/** A store with users usr_1 (alice), usr_2 (bob) and services svc_a, svc_b. */
async function seeded (t: Test, make: MakeStore): Promise<GatewayStore> {
  const store = await make(t)
  t.teardown(async () => { await store.close() })
  await store.users.create(user('usr_1', 'alice'))
  await store.users.create(user('usr_2', 'bob'))
  await store.services.create(service('svc_a'))
  await store.services.create(service('svc_b'))
  return store
}

const ids = async (store: GatewayStore, status: 'pending' | 'delivered' | 'dead' = 'pending'): Promise<string[]> =>
  (await store.outbox.list(status, 1000)).map((e) => e.id)

/** A token authenticated in SSO session `sso` for usr_1 at svc_a. */
async function authenticated (store: GatewayStore, hash: string, sso: string, now = Date.now()): Promise<void> {
  await store.tokens.create({ hash, serviceId: 'svc_a', nextUrl: '/n', prompt: null, expiresAt: now + 60_000, createdAt: now })
  if (!await store.tokens.authenticate(hash, by(sso, now), now)) throw new Error('not authenticated')
}

export function storeContract (t: Test, make: MakeStore): void {
  t.test('users.list: by username, after a name, with a prefix, at most limit', async (t) => {
    const store = await seeded(t, make)
    await store.users.create(user('usr_3', 'alicia'))
    await store.users.create(user('usr_4', 'carol'))
    const names = async (after: string, limit: number, prefix?: string): Promise<string[]> =>
      (await store.users.list(after, limit, prefix)).map((u) => u.username)
    t.same(await names('', 10), ['alice', 'alicia', 'bob', 'carol'])
    t.same(await names('alicia', 10), ['bob', 'carol'], 'after a name')
    t.same(await names('', 2), ['alice', 'alicia'], 'at most limit')
    t.same(await names('', 10, 'ali'), ['alice', 'alicia'], 'a prefix')
    t.same(await names('alice', 10, 'ali'), ['alicia'], 'a prefix after a name')
    t.same(await names('', 10, 'zed'), [])
    t.match((await store.users.list('', 1))[0], { id: 'usr_1', isActive: true, createdAt: Number })
  })

  t.test('audit: append, list newest first with every filter, prune by age', async (t) => {
    const store = await seeded(t, make)
    const at = Date.now() - 10_000
    await store.audit.append([
      { at, kind: 'login', actor: null, user: 'alice', service: null, detail: { ip: '127.0.0.1' } },
      { at: at + 1000, kind: 'service_sign_in', actor: null, user: 'alice', service: 'svc_a', detail: {} },
      { at: at + 2000, kind: 'user_updated', actor: 'admin:bob', user: 'carol', service: null, detail: { fields: ['email'] } }
    ])
    await store.audit.append([{ at: at + 3000, kind: 'service_secret_rotated', actor: 'cli', user: null, service: 'svc_a', detail: {} }])
    const all = await store.audit.list({ limit: 10 })
    t.same(all.map((r) => r.kind), ['service_secret_rotated', 'user_updated', 'service_sign_in', 'login'], 'newest first')
    t.ok(all.every((r, i) => i === 0 || r.id < (all[i - 1] as { id: number }).id), 'ids increase with time')
    t.match(all[1], { actor: 'admin:bob', user: 'carol', service: null, detail: { fields: ['email'] }, at: at + 2000 })
    const kinds = async (filter: Record<string, unknown>): Promise<string[]> =>
      (await store.audit.list({ limit: 10, ...filter })).map((r) => r.kind)
    t.same(await kinds({ user: 'alice' }), ['service_sign_in', 'login'], 'by user')
    t.same(await kinds({ service: 'svc_a' }), ['service_secret_rotated', 'service_sign_in'], 'by service')
    t.same(await kinds({ kind: 'login' }), ['login'], 'by kind')
    t.same(await kinds({ since: at + 1000, until: at + 3000 }), ['user_updated', 'service_sign_in'], 'by time: since inclusive, until exclusive')
    t.same(await kinds({ beforeId: (all[1] as { id: number }).id }), ['service_sign_in', 'login'], 'the next page')
    t.same(await kinds({ limit: 1 }), ['service_secret_rotated'], 'at most limit')
    t.same(await kinds({ user: 'alice', service: 'svc_a' }), ['service_sign_in'], 'filters combine')
    t.equal(await store.audit.prune(at + 1500), 2, 'older records pruned')
    t.same(await kinds({}), ['service_secret_rotated', 'user_updated'])
    await store.audit.append([{ at: Date.now(), kind: 'logout', actor: null, user: 'alice', service: null, detail: {} }])
    const after = await store.audit.list({ limit: 10 })
    t.ok((after[0] as { id: number }).id > (all[0] as { id: number }).id, 'ids keep increasing after a prune')
  })

  t.test('services: a rotation keeps the previous secrets, found by the old call secret', async (t) => {
    const store = await seeded(t, make)
    t.equal((await store.services.byId('svc_a'))?.previous, null, 'none by default')
    const until = Date.now() + 60_000
    const updated = await store.services.update('svc_a', { tokenHash: 'hash-new', signingSecret: 'whsec_new', previous: { tokenHash: 'hash-svc_a', signingSecret: 'whsec_x', until } })
    t.match(updated, { tokenHash: 'hash-new', previous: { tokenHash: 'hash-svc_a', signingSecret: 'whsec_x', until } })
    t.match(await store.services.byTokenHash('hash-new'), { id: 'svc_a' }, 'the new secret')
    t.match(await store.services.byTokenHash('hash-svc_a'), { id: 'svc_a', previous: { until } }, 'the old one, with its window')
    t.match(await store.services.byTokenHash('hash-svc_b'), { id: 'svc_b' }, 'others unchanged')
    await store.services.update('svc_a', { previous: null })
    t.equal(await store.services.byTokenHash('hash-svc_a'), null, 'the old one forgotten')
    const made = await store.services.create({ ...service('svc_c'), previous: { tokenHash: 'old-c', signingSecret: null, until } })
    t.match(made, { previous: { tokenHash: 'old-c', signingSecret: null } })
    t.match(await store.services.byTokenHash('old-c'), { id: 'svc_c' })
  })

  t.test('users: create, read, update, rename, delete; names unique', async (t) => {
    const store = await seeded(t, make)
    t.match(await store.users.byId('usr_1'), { id: 'usr_1', username: 'alice', isActive: true, attributes: {}, createdAt: Number, updatedAt: Number })
    t.match(await store.users.byUsername('bob'), { id: 'usr_2' })
    t.equal(await store.users.byId('usr_none'), null)
    t.equal(await store.users.byUsername('nobody'), null)
    await t.rejects(store.users.create(user('usr_3', 'alice')), { code: 'FST_SSO_GATEWAY_USER_EXISTS' })
    await t.rejects(store.users.create(user('usr_1', 'carol')), { code: 'FST_SSO_GATEWAY_USER_EXISTS' }, 'a duplicate id')
    const updated = await store.users.update('usr_1', { email: 'a@x', attributes: { team: 'red' } })
    t.match(updated, { email: 'a@x', attributes: { team: 'red' }, username: 'alice' })
    t.match(await store.users.byId('usr_1'), { email: 'a@x', attributes: { team: 'red' } }, 'stored')
    await t.rejects(store.users.update('usr_1', { username: 'bob' }), { code: 'FST_SSO_GATEWAY_USER_EXISTS' }, 'rename onto a taken name')
    t.match(await store.users.byId('usr_1'), { username: 'alice' }, 'nothing changed')
    t.equal(await store.users.update('usr_none', { isActive: false }), null)
    await store.sessions.set('s1', session('usr_2', 'sso_9'), index('usr_2', 'sso_9', Date.now() + 60_000))
    t.match(await store.users.update('usr_2', { isActive: false }, undefined, {}), { isActive: false }, 'ending sessions without events')
    t.equal(await store.sessions.get('s1', Date.now()), null)
    t.equal(await store.users.delete('usr_none', () => [event('evt_never')]), null, 'nothing to delete')
    t.same(await ids(store), [], '…and no event queued')
    const returned = await store.users.byId('usr_2')
    if (returned !== null) returned.attributes.x = 1
    t.same((await store.users.byId('usr_2'))?.attributes, {}, 'records returned are copies')
  })

  t.test('services: create, read, list, update; names unique; who signed in', async (t) => {
    const store = await seeded(t, make)
    t.match(await store.services.byId('svc_a'), { name: 'svc_a', enabled: true, createdAt: Number })
    t.match(await store.services.byName('svc_b'), { id: 'svc_b' })
    t.match(await store.services.byTokenHash('hash-svc_a'), { id: 'svc_a' })
    t.equal(await store.services.byTokenHash('nope'), null)
    t.equal(await store.services.byName('nope'), null)
    t.equal(await store.services.byId('nope'), null)
    t.same((await store.services.list()).map((s) => s.id), ['svc_a', 'svc_b'])
    await t.rejects(store.services.create(service('svc_c', 'svc_a')), { code: 'FST_SSO_GATEWAY_SERVICE_EXISTS' })
    t.match(await store.services.update('svc_a', { enabled: false, access: { users: ['usr_1'], groups: [] }, fields: ['email'] }),
      { enabled: false, access: { users: ['usr_1'], groups: [] }, fields: ['email'] })
    t.match(await store.services.byId('svc_a'), { enabled: false, access: { users: ['usr_1'] } })
    t.match(await store.services.byId('svc_b'), { displayName: null, logoUrl: null }, 'no display name or logo by default')
    t.match(await store.services.update('svc_b', { displayName: 'Billing', logoUrl: 'https://cdn.test/b.svg' }), { displayName: 'Billing', logoUrl: 'https://cdn.test/b.svg' })
    t.match(await store.services.byId('svc_b'), { displayName: 'Billing', logoUrl: 'https://cdn.test/b.svg' }, 'display name and logo stored')
    await store.services.create({ ...service('svc_d'), displayName: 'Docs', logoUrl: '/logos/d.png' })
    t.match(await store.services.byName('svc_d'), { displayName: 'Docs', logoUrl: '/logos/d.png' }, 'given at creation')
    t.match(await store.services.update('svc_b', { displayName: null, logoUrl: null }), { displayName: null, logoUrl: null }, 'cleared')
    t.equal(await store.services.update('nope', { enabled: true }), null)

    const now = Date.now()
    t.equal(await store.services.hasUser('svc_a', 'usr_1'), false)
    await authenticated(store, 't1', 'sso_1', now)
    t.equal(await store.services.hasUser('svc_a', 'usr_1'), true, 'recorded by the authentication')
    t.equal(await store.services.hasUser('svc_b', 'usr_1'), false)
    await store.users.update('usr_1', { username: 'alicia' })
    await store.tokens.create({ hash: 't2', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
    await store.tokens.authenticate('t2', by('sso_2', now, { userId: 'usr_2' }), now)
    t.match(await store.services.users('svc_a', '', 10), [
      { userId: 'usr_1', lastUsername: 'alicia', user: { username: 'alicia' } },
      { userId: 'usr_2', lastUsername: 'bob', user: { username: 'bob' } }
    ], 'by user id, with the name the service last saw')
    t.match(await store.services.users('svc_a', 'usr_1', 1), [{ userId: 'usr_2' }], 'paged')
    await store.users.delete('usr_2', () => [])
    t.match(await store.services.users('svc_a', 'usr_1', 10), [{ userId: 'usr_2', lastUsername: 'bob', user: null }], 'a deleted user stays listed')
  })

  t.test('groups: create (idempotent), list, members, delete', async (t) => {
    const store = await seeded(t, make)
    await store.groups.create('staff')
    await store.groups.create('staff')
    await store.groups.create('admins')
    t.same(await store.groups.list(), ['admins', 'staff'])
    t.same(await store.groups.setMember('staff', 'usr_1', true, () => []), ['staff'])
    t.same(await store.groups.setMember('admins', 'usr_1', true, () => []), ['admins', 'staff'])
    await store.groups.setMember('staff', 'usr_2', true, () => [])
    t.same(await store.groups.ofUser('usr_1'), ['admins', 'staff'])
    await store.users.create(user('usr_0', 'aaron'))
    await store.groups.setMember('staff', 'usr_0', true, () => [])
    t.same((await store.groups.members('staff')).map((u) => u.username), ['aaron', 'alice', 'bob'], 'by username')
    await store.groups.setMember('staff', 'usr_0', false, () => [])
    t.same(await store.groups.members('nope'), [], 'an unknown group has no members')
    t.same(await store.groups.setMember('staff', 'usr_1', false, () => []), ['admins'])
    await t.rejects(store.groups.setMember('nope', 'usr_1', true, () => []), { code: 'FST_SSO_GATEWAY_INVALID_GROUP' })
    t.equal(await store.groups.delete('admins'), true)
    t.equal(await store.groups.delete('admins'), false)
    t.same(await store.groups.ofUser('usr_1'), [], 'memberships go with the group')
    await store.users.delete('usr_2', () => [])
    t.same(await store.groups.members('staff'), [], 'and with the user')
  })

  t.test('request tokens: every transition, and only those', async (t) => {
    const store = await seeded(t, make)
    const now = Date.now()
    const create = async (hash: string, serviceId = 'svc_a') =>
      await store.tokens.create({ hash, serviceId, nextUrl: '/next', prompt: 'none', expiresAt: now + 60_000, createdAt: now })
    await create('p')
    await t.rejects(create('p'), 'a hash is stored once')
    t.match(await store.tokens.get('p', now), { hash: 'p', serviceId: 'svc_a', nextUrl: '/next', status: 'pending', prompt: 'none', userId: null, ssoSession: null })
    t.equal(await store.tokens.consume('p', 'svc_a', now, null), null, 'pending cannot be consumed')
    t.equal(await store.tokens.spendDeclined('p', 'svc_a', now), false, 'pending is not declined')
    // pending → authenticated
    t.equal(await store.tokens.authenticate('p', by('sso_1', now, { codeHash: 'code-hash', authAt: now - 5 }), now), true)
    t.match(await store.tokens.get('p', now), { status: 'authenticated', userId: 'usr_1', ssoSession: 'sso_1', codeHash: 'code-hash', authAt: now - 5, expiresAt: now + 60_000 })
    t.match(await store.ssoSessions.services('sso_1'), [{ serviceId: 'svc_a', userId: 'usr_1', lastAt: now }], 'the SSO session reached the service')
    t.equal(await store.tokens.authenticate('p', by('sso_1', now), now), false, 'only once')
    t.equal(await store.tokens.decline('p', now), false, 'an authenticated token cannot be declined')
    // authenticated → used: only its service, only with its code
    t.equal(await store.tokens.consume('p', 'svc_b', now, 'code-hash'), null, 'not by another service')
    t.equal(await store.tokens.consume('p', 'svc_a', now, 'other'), null, 'not with another code')
    t.equal(await store.tokens.consume('p', 'svc_a', now, null), null, 'not without the code')
    t.match(await store.tokens.consume('p', 'svc_a', now, 'code-hash'), { status: 'used', userId: 'usr_1', ssoSession: 'sso_1', nextUrl: '/next' })
    t.equal(await store.tokens.consume('p', 'svc_a', now, 'code-hash'), null, 'never twice')
    t.match(await store.tokens.get('p', now), { status: 'used' })
    // pending → declined → used
    await create('d')
    t.equal(await store.tokens.decline('d', now), true)
    t.equal(await store.tokens.decline('d', now), false)
    t.equal(await store.tokens.authenticate('d', by('sso_1', now), now), false, 'a declined token cannot be authenticated')
    t.equal(await store.tokens.spendDeclined('d', 'svc_b', now), false, 'only its service')
    t.equal(await store.tokens.spendDeclined('d', 'svc_a', now), true)
    t.equal(await store.tokens.spendDeclined('d', 'svc_a', now), false, 'once')
    // a token without a code (django-sso) is consumed without one
    await create('n')
    await store.tokens.authenticate('n', by('sso_1', now), now)
    t.match(await store.tokens.consume('n', 'svc_a', now, 'anything'), { status: 'used' })
    // any → used (burn)
    await create('b1')
    await store.tokens.burn('b1')
    t.equal(await store.tokens.authenticate('b1', by('sso_1', now), now), false, 'a burnt token is dead')
    await create('b2')
    await store.tokens.authenticate('b2', by('sso_1', now), now)
    await store.tokens.burn('b2')
    t.equal(await store.tokens.consume('b2', 'svc_a', now, null), null)
    await store.tokens.burn('unknown')
    t.equal(await store.tokens.get('unknown', now), null)
    t.equal(await store.tokens.authenticate('unknown', by('sso_1', now), now), false)
    t.equal(await store.tokens.decline('unknown', now), false)
  })

  t.test('request tokens expire: unreadable, untransitionable, then pruned', async (t) => {
    const store = await seeded(t, make)
    const now = Date.now()
    await store.tokens.create({ hash: 'e', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 1000, createdAt: now })
    await store.tokens.create({ hash: 'live', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
    const later = now + 1000
    t.equal(await store.tokens.get('e', later), null, 'expired at its expiry')
    t.equal(await store.tokens.authenticate('e', by('sso_1', later), later), false)
    t.equal(await store.tokens.decline('e', later), false)
    await store.tokens.authenticate('live', by('sso_1', now, { expiresAt: now + 500 }), now)
    t.equal(await store.tokens.consume('live', 'svc_a', now + 500, null), null, 'the authenticated expiry counts')
    await store.tokens.create({ hash: 'dec', serviceId: 'svc_a', nextUrl: '/', prompt: 'none', expiresAt: now + 1000, createdAt: now })
    await store.tokens.decline('dec', now)
    t.equal(await store.tokens.spendDeclined('dec', 'svc_a', later), false)
    t.equal(await store.tokens.prune(now), 0)
    t.equal(await store.tokens.prune(later), 3)
    t.equal(await store.tokens.prune(later), 0)
  })

  t.test('concurrency: of concurrent claimers exactly one wins', async (t) => {
    const store = await seeded(t, make)
    const now = Date.now()
    await authenticated(store, 'c', 'sso_1', now)
    const consumed = await Promise.all(Array.from({ length: 8 }, async () => await store.tokens.consume('c', 'svc_a', now, null)))
    t.equal(consumed.filter((r) => r !== null).length, 1, 'consume')
    await store.tokens.create({ hash: 'a', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
    const auth = await Promise.all(['sso_1', 'sso_2', 'sso_3'].map(async (sso) => await store.tokens.authenticate('a', by(sso, now), now)))
    t.same(auth.filter(Boolean).length, 1, 'authenticate')
    await store.tokens.create({ hash: 'd', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
    await store.tokens.decline('d', now)
    const spent = await Promise.all(Array.from({ length: 4 }, async () => await store.tokens.spendDeclined('d', 'svc_a', now)))
    t.same(spent.filter(Boolean).length, 1, 'spendDeclined')
    await store.outbox.enqueue(Array.from({ length: 10 }, (_, i) => event(`evt_${i}`, 'svc_a', `usr_${i}`)))
    const due = Date.now()
    const claims = await Promise.all([store.outbox.claim(due, 1000, 10), store.outbox.claim(due, 1000, 10)])
    const claimed = claims.flat().map((e) => e.id)
    t.equal(claimed.length, 10, 'outbox: every event claimed once')
    t.equal(new Set(claimed).size, 10, 'by one claimer each')
  })

  t.test('browser sessions: get, set, destroy, list, touch, expiry', async (t) => {
    const store = await seeded(t, make)
    const now = Date.now()
    t.equal(await store.sessions.get('s1', now), null)
    await store.sessions.set('s1', session('usr_1', 'sso_1', { n: 1 }), index('usr_1', 'sso_1', now + 10_000))
    t.match(await store.sessions.get('s1', now), { user: 'usr_1', sso: 'sso_1', n: 1 })
    await store.sessions.set('s1', session('usr_1', 'sso_1', { n: 2 }), index('usr_1', 'sso_1', now + 10_000))
    t.match(await store.sessions.get('s1', now), { n: 2 }, 'replaced')
    t.equal(await store.sessions.get('s1', now + 10_000), null, 'not returned once expired')
    await store.sessions.set('anon', { cookie: { originalMaxAge: null } } as Session, index(null, null, now + 10_000))
    await store.sessions.set('s2', session('usr_1', 'sso_2'), index('usr_1', 'sso_2', now + 20_000))
    await store.sessions.set('s3', session('usr_2', 'sso_3', { createdAt: 1 }), index('usr_2', 'sso_3', now + 20_000))
    t.same((await store.sessions.listByUser('usr_1', now)).map((s) => s.sso).sort(), ['sso_1', 'sso_2'])
    t.same((await store.sessions.listByUser('usr_1', now + 15_000)).map((s) => s.sso), ['sso_2'], 'live ones only')
    await store.sessions.destroy('anon')
    t.equal(await store.sessions.get('anon', now), null)
    await store.sessions.destroy('never-existed')
    // touch: the idle clock restarts, never past the absolute limit
    const lifetime = { idleTimeout: 5000, absoluteTimeout: 100_000 }
    t.equal(await store.sessions.touch('sso_2', now + 1000, lifetime), 1)
    t.match(await store.sessions.get('s2', now + 1000), { seenAt: now + 1000 })
    t.equal(await store.sessions.get('s2', now + 6000), null, 'expires idle from the touch')
    t.equal(await store.sessions.touch('sso_2', now + 30_000, lifetime), 0, 'an expired session is not revived')
    t.equal(await store.sessions.touch('sso_3', now, { idleTimeout: 5000, absoluteTimeout: 10 }), 1)
    t.equal(await store.sessions.get('s3', now), null, 'capped at createdAt + absoluteTimeout')
    t.equal(await store.sessions.touch('nope', now, lifetime), 0)
    await store.sessions.set('old', session('usr_2', 'sso_5', { createdAt: undefined }), index('usr_2', 'sso_5', now + 20_000))
    t.equal(await store.sessions.touch('sso_5', now, lifetime), 1)
    t.match(await store.sessions.get('old', now + 4000), { seenAt: now }, 'a session without createdAt gets the idle limit')
    t.equal(await store.sessions.get('old', now + 5000), null)
    await store.sessions.destroy('old')
    // takeExpired: oldest first, up to limit, returning the index
    const taken = await store.sessions.takeExpired(now + 50_000, 2)
    t.equal(taken.length, 2)
    t.same(taken, [{ user: 'usr_2', ssoSession: 'sso_3' }, { user: 'usr_1', ssoSession: 'sso_2' }], 'the oldest first')
    t.equal((await store.sessions.takeExpired(now + 50_000, 10)).length, 1)
    t.same(await store.sessions.takeExpired(now + 50_000, 10), [])
  })

  t.test('ending sessions: browser sessions, SSO sessions and their tokens go; nothing is resurrected', async (t) => {
    const store = await seeded(t, make)
    const now = Date.now()
    const later = now + 60_000
    for (const [sid, u, sso] of [['a1', 'usr_1', 'sso_1'], ['a2', 'usr_1', 'sso_2'], ['a3', 'usr_1', 'sso_3'], ['b1', 'usr_2', 'sso_4']] as const) {
      await store.sessions.set(sid, session(u, sso), index(u, sso, later))
    }
    await authenticated(store, 't1', 'sso_1', now)
    await authenticated(store, 't2', 'sso_2', now)
    await authenticated(store, 't3', 'sso_3', now)
    await store.tokens.create({ hash: 't3b', serviceId: 'svc_b', nextUrl: '/', prompt: null, expiresAt: later, createdAt: now })
    await store.tokens.authenticate('t3b', by('sso_3', now), now)

    // One SSO session.
    const one = await store.sessions.destroyBySsoSession('sso_1', (ended) => {
      t.same(ended.ssoSessions, [{ id: 'sso_1', userId: 'usr_1', services: ['svc_a'] }], 'events see what ended')
      return [event('evt_1')]
    })
    t.equal(one.browserSessions, 1)
    t.same(await ids(store), ['evt_1'])
    t.equal(await store.sessions.get('a1', now), null)
    t.same(await store.ssoSessions.services('sso_1'), [], 'its reach is forgotten')
    t.equal(await store.tokens.consume('t1', 'svc_a', now, null), null, 'its authenticated token is burnt with it')
    await store.sessions.set('a1', session('usr_1', 'sso_1'), index('usr_1', 'sso_1', later))
    t.equal(await store.sessions.get('a1', now), null, 'a late save does not resurrect it')
    await store.sessions.set('new', session('usr_1', 'sso_1'), index('usr_1', 'sso_1', later))
    t.equal(await store.sessions.get('new', now), null, 'nor does any session of the ended SSO session')
    await store.tokens.create({ hash: 't1b', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: later, createdAt: now })
    t.equal(await store.tokens.authenticate('t1b', by('sso_1', now), now), false, 'no token is authenticated into it afterwards')
    await authenticated(store, 'tr', 'sso_reach_only', now)
    const reachOnly = await store.sessions.destroyBySsoSession('sso_reach_only', () => [])
    t.same(reachOnly.ssoSessions, [{ id: 'sso_reach_only', userId: 'usr_1', services: ['svc_a'] }], 'an SSO session known only by its reach')
    const none = await store.sessions.destroyBySsoSession('sso_unknown', () => [])
    t.same(none, { browserSessions: 0, ssoSessions: [{ id: 'sso_unknown', userId: '', services: [] }] }, 'an unknown SSO session ends with nothing in it')

    await store.tokens.create({ hash: 'tb', serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: later, createdAt: now })
    await store.tokens.authenticate('tb', by('sso_4', now, { userId: 'usr_2' }), now)
    // Every session of a user but one.
    const others = await store.sessions.destroyByUser('usr_1', (ended) => ended.ssoSessions.map((s) => event(`evt_${s.id}`)), 'sso_3')
    t.same(others.ssoSessions.map((s) => s.id), ['sso_2'])
    t.equal(others.browserSessions, 1)
    t.match(await store.sessions.get('a3', now), { sso: 'sso_3' }, 'the kept one stays')
    t.match(await store.tokens.get('t3', now), { status: 'authenticated' }, 'with its tokens')
    t.equal(await store.tokens.consume('t2', 'svc_a', now, null), null)
    // Then all of them.
    const all = await store.sessions.destroyByUser('usr_1', () => [event('evt_all')])
    t.same(all.ssoSessions.map((s) => s.id), ['sso_3'])
    t.same(all.ssoSessions[0]?.services.sort(), ['svc_a', 'svc_b'])
    t.equal(await store.tokens.consume('t3b', 'svc_b', now, null), null)
    t.same(await store.sessions.listByUser('usr_1', now), [])
    await store.sessions.set('a3', session('usr_1', 'sso_3'), index('usr_1', 'sso_3', later))
    t.equal(await store.sessions.get('a3', now), null, 'not resurrected')
    t.match(await store.sessions.get('b1', now), { user: 'usr_2' }, 'other users untouched')
    t.match(await store.ssoSessions.services('sso_4'), [{ userId: 'usr_2' }], 'with their reach')
    t.match(await store.tokens.get('tb', now), { status: 'authenticated' }, 'and their tokens')
    await store.sessions.takeExpired(now, 10)
    await store.sessions.set('a3', session('usr_1', 'sso_3'), index('usr_1', 'sso_3', later))
    t.equal(await store.sessions.get('a3', now), null, 'what ended is remembered past a sweep')
    await store.sessions.destroy('b1')
    await store.sessions.set('b1', session('usr_2', 'sso_4'), index('usr_2', 'sso_4', later))
    t.equal(await store.sessions.get('b1', now), null, 'a destroyed session is not resurrected either')
    t.same(await ids(store), ['evt_1', 'evt_sso_2', 'evt_all'])
    await store.sessions.takeExpired(later + 10 * 3_600_000, 10)
  })

  t.test('outbox: order per (service, user), leases, retries, dead letters, replay, status, prune', async (t) => {
    const store = await seeded(t, make)
    await store.outbox.enqueue([event('e1', 'svc_a', 'u1'), event('e2', 'svc_a', 'u1'), event('e3', 'svc_a', 'u2'), event('e4', 'svc_b', 'u1')])
    const now = Date.now()
    await t.rejects(store.outbox.enqueue([event('e5'), event('e1')]), 'a queued id is refused')
    t.same(await ids(store), ['e1', 'e2', 'e3', 'e4'], 'nothing of a refused batch is queued')
    const first = await store.outbox.claim(now, 1000, 10)
    t.same(first.map((e) => e.id), ['e1', 'e3', 'e4'], 'never an event behind an earlier pending one of the same (service, user)')
    t.match(first[0], { serviceId: 'svc_a', userKey: 'u1', payload: '{"id":"e1"}', status: 'pending', attempts: 0, seq: Number, lastError: null })
    t.same(await store.outbox.claim(now, 1000, 10), [], 'leased')
    t.same((await store.outbox.claim(now + 1000, 1000, 1)).map((e) => e.id), ['e1'], 'a lease ends; limit kept')
    await store.outbox.complete('e1')
    t.same((await store.outbox.claim(now + 2000, 1000, 10, ['e2', 'e4'])).map((e) => e.id), ['e2', 'e4'], 'by id: the next in order')
    await store.outbox.release('e2')
    t.same((await store.outbox.claim(now + 2000, 1000, 10, ['e2'])).map((e) => e.id), ['e2'], 'released: claimable again at once')
    await store.outbox.fail('e2', 'HTTP 500', now + 60_000, now + 2000)
    t.match((await store.outbox.list('pending', 10)).find((e) => e.id === 'e2'), { attempts: 1, lastError: 'HTTP 500', nextAttemptAt: now + 60_000 })
    t.same(await store.outbox.claim(now + 3000, 1000, 10, ['e2']), [], 'not before it is due')
    t.same((await store.outbox.claim(now + 60_000, 1000, 10, ['e2'])).map((e) => e.id), ['e2'], 'due then')
    t.same(await store.outbox.expedite('svc_a', 'u1', now + 3000), ['e2'])
    t.same(await store.outbox.claim(now + 3000, 1000, 10, ['e2']), [], 'a leased event is not made due')
    await store.outbox.release('e2')
    await store.outbox.complete('nope')
    await store.outbox.fail('nope', 'x', null, now)
    await store.outbox.release('nope')
    t.match(await store.outbox.status(), [{ serviceId: 'svc_a', pending: 2, dead: 0, failingSince: now + 2000 }, { serviceId: 'svc_b', pending: 1, dead: 0, failingSince: null }])
    t.same(await store.outbox.expedite('svc_a', 'u1', now + 3000), ['e2'])
    t.same((await store.outbox.claim(now + 3000, 1000, 10, ['e2'])).map((e) => e.id), ['e2'], 'expedited: due now')
    t.same(await store.outbox.expedite('svc_a', 'u1', now + 3000), ['e2'], 'a claimed event is listed, not rescheduled')
    await store.outbox.fail('e2', 'HTTP 410', null, now + 3000)
    t.same(await ids(store, 'dead'), ['e2'])
    t.match(await store.outbox.status(), [{ serviceId: 'svc_a', pending: 1, dead: 1 }, { serviceId: 'svc_b', pending: 1, dead: 0 }])
    t.equal(await store.outbox.replay('e2', now + 4000), true)
    t.equal(await store.outbox.replay('e2', now + 4000), false, 'only a dead event')
    t.equal(await store.outbox.replay('nope', now), false)
    t.same((await store.outbox.claim(now + 4000, 1000, 10, ['e2'])).map((e) => e.id), ['e2'])
    await store.outbox.complete('e2')
    t.same(await ids(store, 'delivered'), ['e1', 'e2'])
    t.equal(await store.outbox.prune(now - 60_000), 0, 'within the retention')
    t.equal(await store.outbox.prune(Date.now() + 1), 2)
    t.same(await store.outbox.list('delivered', 10), [])
    t.same((await store.outbox.list('pending', 1)).map((e) => e.id), ['e3'], 'list: limit, oldest first')
  })

  t.test('outbox.expediteService: a service\'s waiting, unclaimed events become due now; leased events and other services are left alone', async (t) => {
    const store = await seeded(t, make)
    await store.outbox.enqueue([event('e1', 'svc_a', 'u1'), event('e2', 'svc_a', 'u2'), event('e3', 'svc_a', 'u3'), event('e4', 'svc_b', 'u1')])
    const now = Date.now()
    t.same((await store.outbox.claim(now, 1000, 10)).map((e) => e.id), ['e1', 'e2', 'e3', 'e4'])
    await store.outbox.fail('e1', 'HTTP 503', now + 60_000, now)
    await store.outbox.fail('e2', 'HTTP 503', now + 60_000, now)
    await store.outbox.fail('e4', 'HTTP 503', now + 60_000, now)
    t.same(await store.outbox.claim(now + 500, 1000, 10), [], 'before: nothing due')
    t.equal(await store.outbox.expediteService('svc_a', now + 500), 2, 'e1 and e2 were waiting (e3 is leased)')
    t.same((await store.outbox.claim(now + 500, 1000, 10)).map((e) => e.id), ['e1', 'e2'], 'due now; e4 (another service) keeps its retry time')
    t.equal(await store.outbox.expediteService('svc_a', now + 500), 0, 'leased events are not counted')
    t.equal(await store.outbox.expediteService('svc_none', now + 500), 0)
    t.match((await store.outbox.list('pending', 10)).find((e) => e.id === 'e4'), { nextAttemptAt: now + 60_000 })
  })

  // Each change that causes events: a failure in the event write (an id already queued) leaves
  // neither the change nor any event; without the failure both are there.
  t.test('atomic pairs: a change and its events are written together or not at all', async (t) => {
    const store = await seeded(t, make)
    const now = Date.now()
    const later = now + 60_000
    await store.outbox.enqueue([event('evt_taken')])
    const clash = (): NewOutboxEvent[] => [event('evt_new'), event('evt_taken')]
    const throws = (): NewOutboxEvent[] => { throw new Error('event build failed') }
    const pending = async (): Promise<string[]> => await ids(store)

    // users.update (+ rename)
    await t.rejects(store.users.update('usr_1', { username: 'alicia', isStaff: true }, clash))
    t.match(await store.users.byId('usr_1'), { username: 'alice', isStaff: false }, 'user update: neither')
    await t.rejects(store.users.update('usr_1', { isStaff: true }, throws))
    t.match(await store.users.byId('usr_1'), { isStaff: false })
    t.match(await store.users.update('usr_1', { username: 'alicia' }, (u) => [event(`evt_rename_${u.username}`)]), { username: 'alicia' })
    t.same(await pending(), ['evt_taken', 'evt_rename_alicia'], 'user update: both')

    // users.update ending sessions (password change, disable)
    await store.sessions.set('a1', session('usr_1', 'sso_1'), index('usr_1', 'sso_1', later))
    await store.sessions.set('a2', session('usr_1', 'sso_2'), index('usr_1', 'sso_2', later))
    await authenticated(store, 't1', 'sso_1', now)
    await t.rejects(store.users.update('usr_1', { passwordHash: 'new' }, clash, { exceptSsoSession: 'sso_2' }))
    t.match(await store.users.byId('usr_1'), { passwordHash: null }, 'password change: neither the password…')
    t.match(await store.sessions.get('a1', now), { sso: 'sso_1' }, '…nor the end of the sessions')
    t.match(await store.tokens.get('t1', now), { status: 'authenticated' }, '…nor the burn of their tokens')
    const changed = await store.users.update('usr_1', { passwordHash: 'new' }, (_u, ended) => ended.ssoSessions.map((s) => event(`evt_pw_${s.id}`)), { exceptSsoSession: 'sso_2' })
    t.match(changed, { passwordHash: 'new' })
    t.equal(await store.sessions.get('a1', now), null, 'password change: both')
    t.match(await store.sessions.get('a2', now), { sso: 'sso_2' }, 'the kept session stays')
    t.equal(await store.tokens.consume('t1', 'svc_a', now, null), null)
    t.same((await pending()).slice(-1), ['evt_pw_sso_1'])
    await t.rejects(store.users.update('usr_1', { isActive: false }, throws, {}))
    t.match(await store.sessions.get('a2', now), { sso: 'sso_2' }, 'disable: neither')
    t.match(await store.users.byId('usr_1'), { isActive: true })
    await store.users.update('usr_1', { isActive: false }, () => [event('evt_disabled')], {})
    t.equal(await store.sessions.get('a2', now), null, 'disable: both')
    t.same((await pending()).slice(-1), ['evt_disabled'])

    // users.delete
    await store.sessions.set('b1', session('usr_2', 'sso_3'), index('usr_2', 'sso_3', later))
    await t.rejects(store.users.delete('usr_2', clash))
    t.match(await store.users.byId('usr_2'), { username: 'bob' }, 'delete: neither the user…')
    t.match(await store.sessions.get('b1', now), { sso: 'sso_3' }, '…nor the sessions')
    t.same(await store.users.delete('usr_2', () => [event('evt_deleted')]), { browserSessions: 1, ssoSessions: [{ id: 'sso_3', userId: 'usr_2', services: [] }] })
    t.equal(await store.users.byId('usr_2'), null, 'delete: both')
    t.equal(await store.sessions.get('b1', now), null)
    t.same((await pending()).slice(-1), ['evt_deleted'])

    // sessions.destroyByUser / destroyBySsoSession
    await store.users.update('usr_1', { isActive: true })
    await store.sessions.set('c1', session('usr_1', 'sso_5'), index('usr_1', 'sso_5', later))
    await store.sessions.set('c2', session('usr_1', 'sso_6'), index('usr_1', 'sso_6', later))
    await t.rejects(store.sessions.destroyByUser('usr_1', clash))
    t.equal((await store.sessions.listByUser('usr_1', now)).length, 2, 'sign out everywhere: neither')
    await t.rejects(store.sessions.destroyBySsoSession('sso_5', clash))
    t.match(await store.sessions.get('c1', now), { sso: 'sso_5' }, 'sign out one browser: neither')
    await store.sessions.destroyBySsoSession('sso_5', () => [event('evt_one')])
    t.equal(await store.sessions.get('c1', now), null, 'sign out one browser: both')
    await store.sessions.destroyByUser('usr_1', () => [event('evt_everywhere')])
    t.equal(await store.sessions.get('c2', now), null, 'sign out everywhere: both')
    t.same((await pending()).slice(-2), ['evt_one', 'evt_everywhere'])

    // groups.setMember
    await store.groups.create('staff')
    await t.rejects(store.groups.setMember('staff', 'usr_1', true, clash))
    t.same(await store.groups.ofUser('usr_1'), [], 'group change: neither')
    await store.groups.setMember('staff', 'usr_1', true, (groups) => [event(`evt_groups_${groups.join()}`)])
    t.same(await store.groups.ofUser('usr_1'), ['staff'], 'group change: both')
    t.same((await pending()).slice(-1), ['evt_groups_staff'])

    // services.update (access and other service changes)
    await t.rejects(store.services.update('svc_a', { access: { users: [], groups: ['staff'] } }, clash))
    t.match(await store.services.byId('svc_a'), { access: null }, 'service change: neither')
    await store.services.update('svc_a', { access: { users: [], groups: ['staff'] } }, (s) => [event(`evt_access_${s.id}`)])
    t.match(await store.services.byId('svc_a'), { access: { groups: ['staff'] } }, 'service change: both')

    // tokens.authenticate (a sign-in and its update_account)
    await store.tokens.create({ hash: 'ts', serviceId: 'svc_b', nextUrl: '/', prompt: null, expiresAt: later, createdAt: now })
    await t.rejects(store.tokens.authenticate('ts', by('sso_7', now), now, clash))
    t.match(await store.tokens.get('ts', now), { status: 'pending' }, 'sign-in: neither')
    t.equal(await store.services.hasUser('svc_b', 'usr_1'), false)
    t.same(await store.ssoSessions.services('sso_7'), [])
    t.equal(await store.tokens.authenticate('ts', by('sso_7', now), now, (serviceId) => [event(`evt_signin_${serviceId}`)]), true)
    t.same((await pending()).slice(-2), ['evt_access_svc_a', 'evt_signin_svc_b'], 'sign-in: both')
    t.notOk((await pending()).includes('evt_new'), 'no event of a failed change was ever queued')
  })
}
