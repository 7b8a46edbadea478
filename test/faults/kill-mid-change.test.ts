// Every change of the gateway store that causes events, with the writing process SIGKILLed
// between the change and its events (inside the change, while the events are written): after
// the kill the file shows neither the change nor any event. Real processes, real SQLite file.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { SqliteGatewayStore } from '../../packages/fastify-sso-gateway/src/index.js'

type Session = Parameters<SqliteGatewayStore['sessions']['set']>[1]

const FIXTURE = fileURLToPath(new URL('../fixtures/kill-mid-change.mjs', import.meta.url))
const user = (id: string, username: string) => ({
  id, username, passwordHash: null, isActive: true, isStaff: false, isSuperuser: false, email: null, displayName: null, attributes: {}
})

/** A file with alice (two browser sessions, an authenticated token), service svc_a, group staff, a pending token. */
async function seed (file: string): Promise<void> {
  const store = new SqliteGatewayStore({ filename: file })
  const now = Date.now()
  await store.users.create(user('usr_1', 'alice'))
  await store.services.create({
    id: 'svc_a', name: 'a', baseUrl: 'http://a.test', eventUrl: 'http://a.test/sso/event/', tokenHash: 'h', signingSecret: 'whsec_x',
    djangoToken: null, protocol: 'fastify-sso', enabled: true, freshLogin: false, access: null, fields: null, displayName: null, logoUrl: null
  })
  await store.groups.create('staff')
  for (const [sid, sso] of [['b1', 'sso_1'], ['b2', 'sso_2']]) {
    await store.sessions.set(sid as string, { cookie: { originalMaxAge: null }, user: 'usr_1', sso, createdAt: now } as Session,
      { user: 'usr_1', ssoSession: sso as string, expiresAt: now + 3_600_000 })
  }
  for (const hash of ['authenticated', 'pending']) {
    await store.tokens.create({ hash, serviceId: 'svc_a', nextUrl: '/', prompt: null, expiresAt: now + 60_000, createdAt: now })
  }
  await store.tokens.authenticate('authenticated', {
    userId: 'usr_1', ssoSession: 'sso_1', sessionEndsAt: now + 60_000, authAt: now, codeHash: null, expiresAt: now + 60_000
  }, now)
  await store.close()
}

/** Everything a change could touch, as read back from the file. */
async function state (file: string): Promise<unknown> {
  const store = new SqliteGatewayStore({ filename: file })
  const now = Date.now()
  try {
    return {
      user: await store.users.byId('usr_1'),
      sessions: (await store.sessions.listByUser('usr_1', now)).map((s) => s.sso).sort(),
      reach: await store.ssoSessions.services('sso_1'),
      tokens: [(await store.tokens.get('authenticated', now))?.status, (await store.tokens.get('pending', now))?.status],
      groups: await store.groups.ofUser('usr_1'),
      service: (await store.services.byId('svc_a'))?.access,
      signedIn: await store.services.hasUser('svc_a', 'usr_1'),
      events: await store.outbox.list('pending', 100)
    }
  } finally {
    await store.close()
  }
}

const CHANGES = ['rename', 'passwordChange', 'disable', 'delete', 'signOutEverywhere', 'signOutOneBrowser', 'groupChange', 'serviceChange', 'signIn']

for (const change of CHANGES) {
  t.test(`${change}: killed between the change and its events, neither is written`, async (t) => {
    const file = join(t.testdir({}), 'gateway.sqlite')
    await seed(file)
    const before = await state(file)
    const child = spawn(process.execPath, [FIXTURE, file, change], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, s) => resolve(s)))
    t.equal(signal, 'SIGKILL', `the writer was killed mid-change ${out}`)
    t.same(await state(file), before, 'the file is as it was: no change, no event')
  })
}
