import t from 'tap'
import Fastify from 'fastify'
import { DEFAULT_STEP_NAMES, fastifySsoService, insertAfter, insertBefore, removeStep, replaceStep } from '../src/index.js'
import type { AccountsAdapter, FastifySsoServiceOptions, PipelineContext, PipelineStep } from '../src/index.js'
import { audits, Browser, buildApp, sendEvent, SERVICE_TOKEN, SESSION_SECRET, signIn, SIGNING_SECRET } from './helpers.js'

interface Local { id: number, username: string, email: unknown, active: boolean }

/** An in-memory local account table, found by user_id, else by username. */
function memoryAccounts () {
  const rows: Local[] = []
  const calls: string[] = []
  const adapter: AccountsAdapter<Local> = {
    find (ctx) {
      calls.push(`find:${ctx.source}`)
      return rows.find((r) => r.username === ctx.account.username)
    },
    create (ctx) {
      calls.push('create')
      const row = { id: rows.length + 1, username: ctx.account.username, email: ctx.attributes.email, active: ctx.account.is_active }
      rows.push(row)
      return row
    },
    update (ctx) {
      calls.push(`update:${(ctx.changed ?? []).join(',')}`)
      const row = ctx.local as Local
      row.email = ctx.attributes.email
      row.active = ctx.account.is_active
    }
  }
  return { rows, calls, adapter }
}

const alice = { type: 'update_account', username: 'alice', is_active: true, is_staff: false, is_superuser: false, email: 'a@example.com' }

t.test('the default steps, in order, with stable names', async (t) => {
  t.same(DEFAULT_STEP_NAMES, ['check-active', 'map-attributes', 'find-account', 'create-account', 'update-account', 'on-account'])
  let seen: string[] = []
  await buildApp(t, { pipeline: (steps) => { seen = steps.map((s) => s.name); return steps } })
  t.same(seen, DEFAULT_STEP_NAMES)
})

t.test('sign-in creates the local account once, then updates it; onAccount still runs', async (t) => {
  const { rows, calls, adapter } = memoryAccounts()
  const hooked: string[] = []
  const { app, gateway } = await buildApp(t, { accounts: adapter, onAccount: (a, ctx) => { hooked.push(`${a.username}:${ctx.source}`) } })
  await signIn(new Browser(app), gateway)
  await signIn(new Browser(app), gateway)
  t.equal(rows.length, 1, 'never duplicated')
  t.same(rows[0], { id: 1, username: 'alice', email: 'alice@example.com', active: true })
  t.same(calls, ['find:sign-in', 'create', 'find:sign-in', 'update:'])
  t.same(hooked, ['alice:sign-in', 'alice:sign-in'])
  t.equal((await sendEvent(app, { ...alice, email: 'new@example.com', changed: ['email'] })).statusCode, 200)
  t.equal(rows[0]?.email, 'new@example.com')
  t.same(calls.slice(4), ['find:event', 'update:email'], 'changed reaches the steps')
  t.same(hooked[2], 'alice:event')
})

t.test('a disabled account is not created by an event, but an existing one is updated', async (t) => {
  const { rows, calls, adapter } = memoryAccounts()
  const { app } = await buildApp(t, { accounts: adapter })
  t.equal((await sendEvent(app, { ...alice, username: 'ghost', is_active: false })).statusCode, 200)
  t.equal(rows.length, 0)
  await sendEvent(app, alice)
  await sendEvent(app, { ...alice, is_active: false })
  t.same(rows, [{ id: 1, username: 'alice', email: 'a@example.com', active: false }])
  t.same(calls, ['find:event', 'find:event', 'create', 'find:event', 'update:'])
})

t.test('map-attributes fills ctx.attributes; the app can replace it', async (t) => {
  const seen: Array<Record<string, unknown>> = []
  const spy: PipelineStep = { name: 'spy', run: (ctx) => { seen.push(ctx.attributes) } }
  const { app, gateway } = await buildApp(t, { pipeline: (steps) => insertAfter(steps, 'map-attributes', spy) })
  await signIn(new Browser(app), gateway, { user: { user_id: 'u1', username: 'alice', is_active: true, is_staff: true, is_superuser: false, team: 'x' } })
  t.same(seen[0], { is_active: true, is_staff: true, is_superuser: false, team: 'x' }, 'every field but username and user_id')

  const mapped: Array<Record<string, unknown>> = []
  const { app: app2, gateway: gw2 } = await buildApp(t, {
    pipeline: (steps) => insertBefore(replaceStep(steps, 'map-attributes', {
      name: 'my-attributes',
      run: (ctx) => { ctx.attributes = { name: ctx.account.display_name, admin: ctx.account.is_superuser } }
    }), 'on-account', { name: 'spy', run: (ctx) => { mapped.push(ctx.attributes) } })
  })
  await signIn(new Browser(app2), gw2)
  t.same(mapped, [{ name: 'Alice A.', admin: false }])
})

t.test('a step that refuses at sign-in: 403 page with the (escaped) message, no session', async (t) => {
  const refuseStep: PipelineStep = {
    name: 'only-staff',
    run (ctx: PipelineContext) {
      if (ctx.source === 'sign-in' && !ctx.account.is_staff) ctx.refuse('Only <staff> may use "Reports".')
    }
  }
  let created = 0
  const { app, gateway, logs } = await buildApp(t, {
    accounts: { find: () => null, create: () => { created++; return {} }, update: () => {} },
    pipeline: (steps) => insertAfter(steps, 'check-active', refuseStep)
  })
  const browser = new Browser(app)
  const res = await signIn(browser, gateway)
  t.equal(res.statusCode, 403)
  t.match(res.body, /<title>Sign-in refused<\/title>/)
  t.match(res.body, '<p id="refusal">Only &lt;staff&gt; may use &quot;Reports&quot;.</p>')
  t.match(res.body, 'href="/"')
  t.match(res.body, 'href="http://gateway.test/logout/"')
  t.equal(created, 0, 'steps after the refusal do not run')
  t.equal((await browser.request('/sso/test/')).statusCode, 302, 'no session')
  t.match(audits(logs, 'login_refused'), [{ user: 'alice', code: 'FST_SSO_SERVICE_LOGIN_REFUSED' }])
  t.equal(audits(logs, 'login').length, 0)
})

t.test('a refusal on an event is logged and the event acknowledged', async (t) => {
  let onAccount = 0
  const { app, logs } = await buildApp(t, {
    onAccount: () => { onAccount++ },
    pipeline: (steps) => insertBefore(steps, 'find-account', { name: 'no-bob', run: (ctx) => { if (ctx.account.username === 'bob') ctx.refuse('no bobs') } })
  })
  const res = await sendEvent(app, { ...alice, username: 'bob' }, { id: 'ev-bob' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true })
  t.equal(onAccount, 0)
  t.match(audits(logs, 'account_refused'), [{ user: 'bob', source: 'event', message: 'no bobs' }])
  t.equal((await sendEvent(app, { ...alice, username: 'bob' }, { id: 'ev-bob' })).statusCode, 200)
  t.equal(audits(logs, 'event_duplicate').length, 1, 'recorded as applied')
})

t.test('a disabled account refused by a step still loses its sessions', async (t) => {
  const { app, gateway } = await buildApp(t, {
    database: t.testdir() + '/s.sqlite',
    pipeline: (steps) => [...steps, { name: 'refuse-all', run: (ctx) => ctx.refuse('no') }]
  })
  const browser = new Browser(app)
  t.equal((await signIn(browser, gateway)).statusCode, 403)
  const { app: app2, gateway: gw2 } = await buildApp(t, { database: t.testdir() + '/s2.sqlite', pipeline: (steps) => [...steps, { name: 'refuse-events', run: (ctx) => { if (ctx.source !== 'sign-in') ctx.refuse('no') } }] })
  const b2 = new Browser(app2)
  await signIn(b2, gw2)
  t.equal((await sendEvent(app2, { ...alice, is_active: false })).statusCode, 200)
  t.equal((await b2.request('/sso/test/')).statusCode, 302)
})

t.test('the disabled check is a step: removing it lets a disabled account sign in', async (t) => {
  const { app, gateway } = await buildApp(t, { pipeline: (steps) => removeStep(steps, 'check-active') })
  const browser = new Browser(app)
  const res = await signIn(browser, gateway, { user: { username: 'alice', is_active: false, is_staff: false, is_superuser: false } })
  t.equal(res.statusCode, 302)
})

t.test('a step that throws: 500 page at sign-in, 500 to the gateway on an event (it retries)', async (t) => {
  let fail = true
  const { app, gateway, logs } = await buildApp(t, {
    accounts: { find: () => { if (fail) throw new Error('db down: detail'); return null }, create: () => ({}), update: () => {} }
  })
  const browser = new Browser(app)
  const res = await signIn(browser, gateway)
  t.equal(res.statusCode, 500)
  t.match(res.body, /could not set up the account/)
  t.notMatch(res.body, /detail/)
  t.match(logs.find((l) => l.msg === 'account pipeline failed'), { step: 'find-account', source: 'sign-in' })
  const ev = await sendEvent(app, alice, { id: 'ev-1' })
  t.equal(ev.statusCode, 500)
  t.same(ev.json(), { error: 'The application could not set up the account', code: 'FST_SSO_SERVICE_ACCOUNT_HOOK_FAILED' })
  fail = false
  t.equal((await sendEvent(app, alice, { id: 'ev-1' })).statusCode, 200)
})

t.test('helpers refuse unknown step names', async (t) => {
  const steps: PipelineStep[] = [{ name: 'a', run: () => {} }]
  const extra: PipelineStep = { name: 'b', run: () => {} }
  t.throws(() => insertBefore(steps, 'nope', extra), { message: /no pipeline step named "nope"/ })
  t.throws(() => insertAfter(steps, 'nope', extra))
  t.throws(() => replaceStep(steps, 'nope', extra))
  t.throws(() => removeStep(steps, 'nope'))
  t.same(insertBefore(steps, 'a', extra).map((s) => s.name), ['b', 'a'])
  t.same(steps.map((s) => s.name), ['a'], 'the input is not changed')
})

t.test('pipeline and accounts options are checked at register', async (t) => {
  const base: FastifySsoServiceOptions = { gatewayUrl: 'https://sso.example.com', token: SERVICE_TOKEN, signingSecret: SIGNING_SECRET, sessionSecret: SESSION_SECRET, database: ':memory:' }
  const cases: Array<[string, Partial<FastifySsoServiceOptions> | Record<string, unknown>, RegExp]> = [
    ['not a function', { pipeline: 'x' }, /"pipeline": expected a function/],
    ['not an array', { pipeline: () => null }, /"pipeline": expected a function returning an array/],
    ['bad step', { pipeline: () => [{ name: '', run: () => {} }] }, /"pipeline": expected steps of the form/],
    ['null step', { pipeline: () => [null] }, /"pipeline": expected steps of the form/],
    ['no run', { pipeline: () => [{ name: 'x' }] }, /"pipeline": expected steps of the form/],
    ['duplicate', { pipeline: (s: PipelineStep[]) => [...s, s[0]] }, /"pipeline": expected steps with unique names, got "check-active"/],
    ['accounts not an object', { accounts: 'db' }, /"accounts": expected an object with find, create and update/],
    ['accounts null', { accounts: null }, /"accounts": expected an object/],
    ['accounts.create missing', { accounts: { find: () => null, update: () => {} } }, /"accounts.create": expected a function, got undefined/],
    ['accounts.rename not a function', { accounts: { find: () => null, create: () => ({}), update: () => {}, rename: 1 } }, /"accounts.rename": expected a function, got 1/]
  ]
  for (const [name, extra, message] of cases) {
    const app = Fastify()
    app.register(fastifySsoService, { ...base, ...extra } as FastifySsoServiceOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_SSO_SERVICE_INVALID_OPTION', message }, name)
    await app.close()
  }
})
