import t from 'tap'
import type { AccountsAdapter, PipelineSource } from '../src/index.js'
import { audits, Browser, buildApp, SERVICE_TOKEN, signIn } from './helpers.js'

const account = (username: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ user_id: `id-${username}`, username, is_active: true, is_staff: false, is_superuser: false, email: `${username}@example.com`, ...extra })

t.test('resync pages through /sso/accounts/ and reconciles', async (t) => {
  const file = t.testdir() + '/service.sqlite'
  const local = new Map<string, { email: unknown, source: PipelineSource }>()
  const removed: string[] = []
  const adapter: AccountsAdapter<{ email: unknown }> = {
    find: (ctx) => local.get(ctx.account.username),
    create: (ctx) => { const row = { email: ctx.attributes.email, source: ctx.source }; local.set(ctx.account.username, row); return row },
    update: (ctx) => { local.set(ctx.account.username, { email: ctx.attributes.email, source: ctx.source }) },
    remove: (ctx) => { removed.push(`${ctx.username}:${ctx.source}:${String(ctx.userId)}`); local.delete(ctx.username) }
  }
  const { app, gateway, logs } = await buildApp(t, { database: file, accounts: adapter })
  const carol = new Browser(app)
  const dave = new Browser(app)
  const erin = new Browser(app)
  await signIn(carol, gateway, { username: 'carol', user: account('carol') })
  await signIn(dave, gateway, { username: 'dave', user: account('dave') })
  await signIn(erin, gateway, { username: 'erin', user: account('erin') })

  const bodies: URLSearchParams[] = []
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, (o) => {
    bodies.push(new URLSearchParams(String(o.body)))
    return { accounts: [account('carol', { email: 'new@example.com' }), account('dave', { is_active: false })], next_cursor: 'c2' }
  })
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, (o) => {
    bodies.push(new URLSearchParams(String(o.body)))
    return { accounts: [{ user_id: 'id-erin', username: 'erin', deleted: true }, account('frank'), 'junk', { username: '' }], next_cursor: null }
  })
  const summary = await app.ssoService.resync({ pageSize: 2 })
  t.same(summary, { updated: 2, disabled: 1, deleted: 1, refused: 0, failed: 2, pages: 2, complete: true })
  t.equal(bodies[0]?.get('token'), SERVICE_TOKEN)
  t.equal(bodies[0]?.get('limit'), '2')
  t.equal(bodies[0]?.has('cursor'), false)
  t.equal(bodies[1]?.get('cursor'), 'c2')
  t.same(local.get('carol'), { email: 'new@example.com', source: 'resync' })
  t.same(local.get('frank'), { email: 'frank@example.com', source: 'resync' })
  t.same(removed, ['erin:resync:id-erin'])
  t.equal((await carol.request('/sso/test/')).statusCode, 200, 'active: signed in still')
  t.equal((await dave.request('/sso/test/')).statusCode, 302, 'disabled: signed out')
  t.equal((await erin.request('/sso/test/')).statusCode, 302, 'deleted: signed out')
  t.match(audits(logs, 'resync'), [{ updated: 2, disabled: 1, deleted: 1, pages: 2, complete: true }])
  t.match(audits(logs, 'resync_invalid'), [{ count: 2 }])
})

t.test('resync repairs a missed rename (same user id, new username)', async (t) => {
  const renames: string[] = []
  const { app, gateway } = await buildApp(t, { accounts: { find: () => null, create: () => ({}), update: () => {}, rename: (ctx) => { renames.push(`${ctx.oldUsername}>${ctx.username}:${ctx.source}`) } } })
  const b = new Browser(app)
  await signIn(b, gateway, { username: 'carol', user: account('carol') })
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [account('caroline', { user_id: 'id-carol' })], next_cursor: null })
  t.match(await app.ssoService.resync(), { updated: 1, complete: true })
  t.same(renames, ['carol>caroline:resync'])
  t.match((await b.request('/sso/test/')).json().user, { username: 'caroline' })
})

t.test('resync: refusals and failures are counted, the rest goes on', async (t) => {
  const { app, gateway, logs } = await buildApp(t, {
    accounts: { find: (ctx) => { if (ctx.account.username === 'bad') throw new Error('x'); return null }, create: () => ({}), update: () => {}, remove: () => { throw new Error('y') } },
    pipeline: (steps) => [{ name: 'no-zed', run: (ctx) => { if (ctx.account.username === 'zed') ctx.refuse('no') } }, ...steps]
  })
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [account('zed'), account('bad'), account('ok'), { username: 'gone', deleted: true }], next_cursor: null })
  t.same(await app.ssoService.resync(), { updated: 1, disabled: 0, deleted: 0, refused: 1, failed: 2, pages: 1, complete: true })
  t.match(audits(logs, 'account_refused'), [{ user: 'zed', source: 'resync' }])
})

t.test('resync is bounded: maxPages, a stuck cursor', async (t) => {
  const { app, gateway, logs } = await buildApp(t)
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [], next_cursor: 'a' }).times(2)
  t.same(await app.ssoService.resync({ maxPages: 2 }), { updated: 0, disabled: 0, deleted: 0, refused: 0, failed: 0, pages: 2, complete: false }, 'stuck cursor stops at once')
  t.equal(audits(logs, 'resync_stuck').length, 1)
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [], next_cursor: 'a' })
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [], next_cursor: 'b' })
  t.match(await app.ssoService.resync({ maxPages: 2 }), { pages: 2, complete: false }, 'maxPages reached')
})

t.test('one resync at a time; bad bounds are refused', async (t) => {
  const { app, gateway } = await buildApp(t)
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [account('a')] }).delay(50)
  const [one, two] = await Promise.all([app.ssoService.resync(), app.ssoService.resync()])
  t.equal(one, two, 'the same run')
  t.match(one, { updated: 1, pages: 1, complete: true }, 'a missing next_cursor is the last page')
  for (const bad of [{ pageSize: 0 }, { pageSize: 1001 }, { pageSize: 1.5 }, { maxPages: 0 }, { maxPages: 'x' }]) {
    await t.rejects(app.ssoService.resync(bad as never), TypeError)
  }
})

t.test('resync: gateway refusals and broken pages reject with plugin errors', async (t) => {
  const cases: Array<[string, number, unknown, string]> = [
    ['refused', 401, { error: 'unknown service' }, 'FST_SSO_SERVICE_GATEWAY_REFUSED'],
    ['down', 502, 'bad gateway', 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE'],
    ['no accounts array', 200, { accounts: 'x', next_cursor: null }, 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE'],
    ['bad cursor', 200, { accounts: [], next_cursor: 5 }, 'FST_SSO_SERVICE_GATEWAY_UNAVAILABLE']
  ]
  for (const [name, status, body, code] of cases) {
    const { app, gateway } = await buildApp(t)
    gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(status, body as object)
    await t.rejects(app.ssoService.resync(), { code }, name)
  }
  const { app, gateway } = await buildApp(t)
  gateway.intercept({ path: '/sso/accounts/', method: 'POST' }).reply(200, { accounts: [account('a', { pad: 'x'.repeat(200 * 1024) })], next_cursor: null })
  t.match(await app.ssoService.resync(), { updated: 1 }, 'pages may be larger than other answers')
})
