// The sso-gateway CLI in-process (main(), the bin's only code) against a real SQLite file:
// every command, human and --json output, exit codes. cli-bin.test.ts runs the real bin.
import { createServer } from 'node:http'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import type { Session } from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import { EXIT, main, parseDuration } from '../src/cli/main.js'
import { SqliteGatewayStore } from '../src/index.js'
import { freshDatabase } from './pg-helpers.js'

const PASSWORD = 'a-cli-password-long-enough'
const KEY = 'k'.repeat(40)

interface Run { code: number, out: string, err: string, json: any }

async function cli (args: string[], options: { stdin?: string | NodeJS.ReadableStream, env?: Record<string, string> } = {}): Promise<Run> {
  let out = ''
  let err = ''
  const stdin = typeof options.stdin === 'string' || options.stdin === undefined ? Readable.from([options.stdin ?? '']) : options.stdin
  const code = await main(args, {
    stdin: stdin as NodeJS.ReadableStream,
    stdout: { write: (s: string) => { out += s } },
    stderr: { write: (s: string) => { err += s } },
    env: options.env ?? {}
  })
  let json: unknown
  try { json = JSON.parse(out) } catch { json = undefined }
  return { code, out, err, json }
}

function database (t: Test): string {
  return join(t.testdir({}), 'gateway.sqlite')
}

async function migrated (t: Test): Promise<string> {
  const db = database(t)
  const r = await cli(['migrate', '--database', db])
  t.equal(r.code, EXIT.OK, 'migrate')
  return db
}

t.test('usage: help, unknown commands and options, missing arguments, no database', async (t) => {
  const help = await cli(['--help'])
  t.equal(help.code, EXIT.OK)
  t.match(help.out, /Usage: sso-gateway <command>/)
  t.match(help.out, /Exit codes/)
  t.equal((await cli([])).code, EXIT.USAGE, 'no command is wrong usage (the help is shown)')
  t.match((await cli([])).out, /Usage/)
  const unknown = await cli(['frobnicate', '--database', 'x'])
  t.equal(unknown.code, EXIT.USAGE)
  t.match(unknown.err, /unknown command: frobnicate/)
  t.equal((await cli(['user', 'add', 'x', '--bogus'])).code, EXIT.USAGE, 'an unknown option')
  const stray = await cli(['user', 'list', '--base-url', 'http://x', '--database', 'x'])
  t.equal(stray.code, EXIT.USAGE)
  t.match(stray.err, /user list takes no --base-url/)
  t.match((await cli(['user', 'disable', '--database', 'x'])).err, /takes 1 argument/)
  t.match((await cli(['sessions', 'revoke', '--database', 'x'])).err, /takes 1 to 2 argument/)
  const noDb = await cli(['user', 'list'])
  t.equal(noDb.code, EXIT.USAGE)
  t.match(noDb.err, /no database/)
  t.equal((await cli(['user', 'list', '--database', 'x', '--secrets-key', 'short'])).code, EXIT.USAGE, 'a short secrets key')
  const json = await cli(['user', 'list', '--json'])
  t.match(json.json, { error: /no database/ }, '--json: the error as JSON on stdout')
  t.equal(parseDuration('90s'), 90_000)
  t.equal(parseDuration('2d'), 172_800_000)
  t.equal(parseDuration('15'), 15)
})

t.test('the database: a missing file is refused (no silent new database), migrate creates it', async (t) => {
  const db = database(t)
  const missing = await cli(['user', 'list', '--database', db])
  t.equal(missing.code, EXIT.UNAVAILABLE)
  t.match(missing.err, /no database at .*migrate/)
  const made = await cli(['migrate', '--json'], { env: { SSO_DATABASE: db } })
  t.equal(made.code, EXIT.OK)
  t.match(made.json, { schemaVersion: Number })
  t.equal((await cli(['user', 'list'], { env: { DATABASE_URL: db } })).code, EXIT.OK, 'DATABASE_URL too')
  const dir = await cli(['migrate', '--database', t.testdir({})])
  t.equal(dir.code, EXIT.UNAVAILABLE, 'a folder is no database')
  t.match(dir.err, /cannot open the SQLite file/)
})

t.test('users: add, list, disable, enable, passwd; refusals exit 1', async (t) => {
  const db = await migrated(t)
  const added = await cli(['user', 'add', 'Alice', '--password-stdin', '--email', 'a@x.test', '--display-name', 'Alice A', '--superuser', '--database', db], { stdin: `${PASSWORD}\nignored` })
  t.equal(added.code, EXIT.OK, added.err)
  t.match(added.out, /created user alice/)
  const noPw = await cli(['user', 'add', 'bob', '--database', db])
  t.equal(noPw.code, EXIT.USAGE, 'stdin is not a terminal and no --password-stdin')
  t.match(noPw.err, /--password-stdin \(never as an argument\)/)
  t.equal((await cli(['user', 'add', 'bob', '--no-password', '--password-stdin', '--database', db])).code, EXIT.USAGE)
  const bob = await cli(['user', 'add', 'bob', '--no-password', '--staff', '--json', '--database', db])
  t.match(bob.json, { username: 'bob', isStaff: true, isActive: true })
  t.notOk('passwordHash' in bob.json, 'no hash in the output')
  const dup = await cli(['user', 'add', 'ALICE', '--no-password', '--json', '--database', db])
  t.equal(dup.code, EXIT.FAILED)
  t.match(dup.json, { code: 'FST_SSO_GATEWAY_USER_EXISTS' })
  const short = await cli(['user', 'add', 'carol', '--password-stdin', '--database', db], { stdin: 'short\n' })
  t.equal(short.code, EXIT.FAILED)
  t.match(short.err, /at least 15 characters/)
  t.equal((await cli(['user', 'add', 'carol', '--password-stdin', '--min-password-length', '5', '--database', db], { stdin: 'short\n' })).code, EXIT.OK, '--min-password-length')
  t.equal((await cli(['user', 'add', 'dan', '--no-password', '--min-password-length', 'x', '--database', db])).code, EXIT.USAGE)

  const list = await cli(['user', 'list', '--database', db])
  t.match(list.out, /USERNAME\s+STATE\s+FLAGS\s+EMAIL\nalice\s+active\s+superuser\s+a@x.test\nbob\s+active\s+staff\s+-\ncarol\s+active\s+-/)
  t.same((await cli(['user', 'list', '--json', '--prefix', 'b', '--database', db])).json.map((u: { username: string }) => u.username), ['bob'])
  t.same((await cli(['user', 'list', '--json', '--after', 'alice', '--limit', '1', '--database', db])).json.map((u: { username: string }) => u.username), ['bob'])
  t.equal((await cli(['user', 'list', '--limit', '0', '--database', db])).code, EXIT.USAGE)
  t.match((await cli(['user', 'list', '--prefix', 'zz', '--database', db])).out, /\(none\)/)

  const disabled = await cli(['user', 'disable', 'bob', '--database', db])
  t.match(disabled.out, /bob is disabled and signed out everywhere/)
  t.match((await cli(['user', 'enable', 'bob', '--json', '--database', db])).json, { isActive: true })
  const gone = await cli(['user', 'disable', 'nobody', '--database', db])
  t.equal(gone.code, EXIT.FAILED)
  t.match(gone.err, /No user "nobody"/)

  const passwd = await cli(['user', 'passwd', 'alice', '--password-stdin', '--json', '--database', db], { stdin: 'another-long-password-here\n' })
  t.match(passwd.json, { username: 'alice', sessionsEnded: 0 })
  const store = new SqliteGatewayStore({ filename: db })
  t.teardown(() => store.close())
  t.match(await store.users.byUsername('alice'), { passwordHash: /^\$argon2id\$/, email: 'a@x.test', displayName: 'Alice A', isSuperuser: true })
  const audit = await store.audit.list({ limit: 50 })
  t.ok(audit.some((r) => r.kind === 'password_changed' && r.actor === 'cli' && r.user === 'alice'), 'every change an audit record naming the CLI')
  t.ok(audit.some((r) => r.kind === 'user_created' && r.actor === 'cli' && r.user === 'bob'))
})

t.test('services: add (secrets once), list, rotate with an overlap, enable, disable', async (t) => {
  const db = await migrated(t)
  t.equal((await cli(['service', 'add', 'app', '--database', db])).code, EXIT.USAGE, '--base-url is required')
  const bad = await cli(['service', 'add', 'app', '--base-url', 'ftp://x', '--database', db])
  t.equal(bad.code, EXIT.FAILED)
  t.match(bad.err, /baseUrl must be an http\(s\) URL/)
  const added = await cli(['service', 'add', 'app', '--base-url', 'https://app.example.com/', '--fields', 'email, groups', '--fresh-login', '--database', db])
  t.equal(added.code, EXIT.OK, added.err)
  t.match(added.out, /secret\s+\S{40,}\n\s+signingSecret\s+whsec_/)
  t.match(added.out, /shown only now/)
  const django = await cli(['service', 'add', 'dj', '--base-url', 'https://dj.example.com', '--event-url', 'https://dj.example.com/sso/event', '--protocol', 'django-sso-2', '--json', '--database', db])
  t.match(django.json, { service: { name: 'dj', protocol: 'django-sso-2', eventUrl: 'https://dj.example.com/sso/event' }, secret: String, signingSecret: /^whsec_/ })
  t.match((await cli(['service', 'list', '--database', db])).out, /NAME\s+STATE\s+PROTOCOL\s+BASE URL\s+EVENT URL\napp\s+enabled\s+fastify-sso\s+https:\/\/app.example.com\s+https:\/\/app.example.com\/sso\/event\//)
  const listed = (await cli(['service', 'list', '--json', '--database', db])).json
  t.match(listed[0], { name: 'app', fields: ['email', 'groups'], freshLogin: true, overlapUntil: null })
  t.notOk(JSON.stringify(listed).includes('whsec_'), 'no secret in a listing')

  const rotated = await cli(['service', 'rotate', 'app', '--overlap', '2h', '--json', '--database', db])
  t.equal(rotated.code, EXIT.OK, rotated.err)
  t.match(rotated.json, { secret: String, signingSecret: /^whsec_/, overlapUntil: Number, service: { overlapUntil: Number } })
  t.ok(rotated.json.overlapUntil > Date.now() + 7_000_000, 'two hours')
  const signing = await cli(['service', 'rotate', 'app', '--only', 'signing', '--database', db])
  t.match(signing.out, /signingSecret\s+whsec_/)
  t.notMatch(signing.out, /\n {2}secret /, 'only the signing secret')
  t.match(signing.out, /keep working until/)
  const now = await cli(['service', 'rotate', 'dj', '--only', 'secret', '--overlap', '0', '--json', '--database', db])
  t.match(now.json, { secret: String, overlapUntil: null })
  t.notOk('signingSecret' in now.json)
  t.match((await cli(['service', 'rotate', 'dj', '--only', 'secret', '--overlap', '0', '--database', db])).out, /stopped working now/)
  t.equal((await cli(['service', 'rotate', 'app', '--only', 'both', '--database', db])).code, EXIT.USAGE)
  t.equal((await cli(['service', 'rotate', 'app', '--overlap', 'soon', '--database', db])).code, EXIT.USAGE)
  t.equal((await cli(['service', 'rotate', 'app', '--overlap', '90d', '--database', db])).code, EXIT.FAILED, 'more than 30 days')
  t.equal((await cli(['service', 'rotate', 'nope', '--database', db])).code, EXIT.FAILED)

  t.match((await cli(['service', 'disable', 'app', '--database', db])).out, /app is disabled/)
  t.match((await cli(['service', 'enable', 'app', '--json', '--database', db])).json, { enabled: true })
  t.equal((await cli(['service', 'enable', 'nope', '--database', db])).code, EXIT.FAILED)
})

t.test('events: status, dead, replay one or all', async (t) => {
  const db = await migrated(t)
  await cli(['service', 'add', 'app', '--base-url', 'http://127.0.0.1:9', '--database', db])
  await cli(['service', 'add', 'other', '--base-url', 'http://127.0.0.1:9/other', '--database', db])
  await cli(['user', 'add', 'alice', '--no-password', '--database', db])
  await cli(['user', 'disable', 'alice', '--database', db])
  const store = new SqliteGatewayStore({ filename: db })
  t.teardown(() => store.close())
  // Events as a failing delivery leaves them: one retried with an error, the rest dead.
  // app's first event waits for a retry (and holds the rest of app's events back); other's all die.
  const now = Date.now()
  const app = (await store.services.byName('app'))!
  const rest: string[] = []
  for (let batch = await store.outbox.claim(now, 60_000, 100); batch.length > 0; batch = await store.outbox.claim(now, 60_000, 100)) {
    for (const e of batch) {
      if (e.serviceId === app.id) {
        await store.outbox.fail(e.id, 'HTTP 503', now + 60_000, now)
      } else {
        await store.outbox.fail(e.id, 'HTTP 410', null, now)
        rest.push(e.id)
      }
    }
  }
  t.ok(rest.length >= 2, 'the disable queued events for both services')

  const status = await cli(['events', 'status', '--database', db])
  t.match(status.out, /SERVICE\s+PENDING\s+DEAD\s+FAILING SINCE\s+LAST ERROR/)
  t.match(status.out, /HTTP 503/)
  const statusJson = (await cli(['events', 'status', '--json', '--database', db])).json
  t.match(statusJson.find((s: { service: string }) => s.service === 'app'), { pending: Number, dead: 0, lastError: 'HTTP 503', failingSince: Number })
  t.equal(statusJson.reduce((n: number, s: { dead: number }) => n + s.dead, 0), rest.length)

  const dead = await cli(['events', 'dead', '--json', '--database', db])
  t.equal(dead.json.length, rest.length)
  t.match(dead.json[0], { id: String, service: 'other', type: /update_account|deauthenticate/, lastError: 'HTTP 410', attempts: 1 })
  t.notOk('payload' in dead.json[0])
  t.match((await cli(['events', 'dead', '--database', db])).out, /ID\s+SERVICE\s+TYPE\s+ATTEMPTS/)
  const ofOther = (await cli(['events', 'dead', '--service', 'other', '--json', '--database', db])).json
  t.ok(ofOther.length > 0 && ofOther.every((e: { service: string }) => e.service === 'other'), '--service')
  t.equal((await cli(['events', 'dead', '--limit', '1', '--json', '--database', db])).json.length, 1)
  t.equal((await cli(['events', 'dead', '--service', 'nope', '--database', db])).code, EXIT.FAILED)

  t.equal((await cli(['events', 'replay', '--database', db])).code, EXIT.USAGE, 'ids or --all')
  t.equal((await cli(['events', 'replay', 'x', '--all', '--database', db])).code, EXIT.USAGE)
  t.equal((await cli(['events', 'replay', 'x', '--service', 'app', '--database', db])).code, EXIT.USAGE)
  const one = await cli(['events', 'replay', dead.json[0].id, '--json', '--database', db])
  t.equal(one.code, EXIT.OK)
  t.same(one.json, { replayed: [dead.json[0].id], notDead: [] })
  const again = await cli(['events', 'replay', dead.json[0].id, 'evt_unknown', '--database', db])
  t.equal(again.code, EXIT.FAILED, 'an id that is not dead')
  t.match(again.out, /0 event\(s\) queued again; not dead \(or unknown\)/)
  const all = await cli(['events', 'replay', '--all', '--service', 'other', '--json', '--database', db])
  t.equal(all.json.replayed.length, ofOther.length - 1, 'the rest of other\'s dead events')
  const rest2 = await cli(['events', 'replay', '--all', '--database', db])
  t.match(rest2.out, /event\(s\) queued again/)
  t.same(await store.outbox.list('dead', 100), [], 'nothing dead is left')
  t.ok((await store.audit.list({ kind: 'event_replayed', limit: 100 })).every((r) => r.actor === 'cli'))
})

t.test('sessions: list and revoke one or all', async (t) => {
  const db = await migrated(t)
  await cli(['user', 'add', 'alice', '--no-password', '--database', db])
  const store = new SqliteGatewayStore({ filename: db })
  t.teardown(() => store.close())
  const user = (await store.users.byUsername('alice'))!
  const now = Date.now()
  for (const sso of ['sso_one', 'sso_two']) {
    await store.sessions.set(`sid_${sso}`, { cookie: {}, user: user.id, sso, createdAt: now, seenAt: now, ip: '10.0.0.1', ua: 'test' } as unknown as Session,
      { user: user.id, ssoSession: sso, expiresAt: now + 60_000 })
  }
  const list = await cli(['sessions', 'list', 'alice', '--database', db])
  t.match(list.out, /ID\s+STARTED\s+LAST SEEN\s+IP\s+SERVICES\nsso_(one|two)/)
  t.equal((await cli(['sessions', 'list', 'alice', '--json', '--database', db])).json.length, 2)
  const one = await cli(['sessions', 'revoke', 'alice', 'sso_one', '--json', '--database', db])
  t.same(one.json, { username: 'alice', session: 'sso_one', revoked: true })
  const unknown = await cli(['sessions', 'revoke', 'alice', 'sso_one', '--database', db])
  t.equal(unknown.code, EXIT.FAILED, 'no longer live')
  t.match(unknown.out, /no live session sso_one of alice/)
  t.match((await cli(['sessions', 'revoke', 'alice', 'sso_two', '--database', db])).out, /session ended/)
  await store.sessions.set('sid_three', { cookie: {}, user: user.id, sso: 'sso_three', createdAt: now } as unknown as Session,
    { user: user.id, ssoSession: 'sso_three', expiresAt: now + 60_000 })
  t.match((await cli(['sessions', 'revoke', 'alice', '--database', db])).out, /alice signed out everywhere \(1 gateway session/)
  t.same(await store.sessions.listByUser(user.id, Date.now()), [])
  t.equal((await cli(['sessions', 'list', 'nobody', '--database', db])).code, EXIT.FAILED)
})

t.test('secrets key: sealed secrets need it; a key on a database kept in the clear is refused', async (t) => {
  const db = await migrated(t)
  t.equal((await cli(['service', 'add', 'first', '--base-url', 'http://127.0.0.1:9', '--database', db, '--secrets-key', KEY])).code, EXIT.OK, 'an empty database takes a key')
  const store = new SqliteGatewayStore({ filename: db })
  t.teardown(() => store.close())
  t.match((await store.services.byName('first'))?.signingSecret, /^sealed:v1:/, 'sealed at rest')
  const noKey = await cli(['service', 'list', '--database', db])
  t.equal(noKey.code, EXIT.UNAVAILABLE)
  t.match(noKey.err, /secretsKey.*is required/)
  const wrong = await cli(['service', 'list', '--database', db], { env: { SSO_SECRETS_KEY: 'w'.repeat(40) } })
  t.equal(wrong.code, EXIT.UNAVAILABLE)
  const right = await cli(['service', 'rotate', 'first', '--json', '--database', db], { env: { SSO_SECRETS_KEY: `${KEY} ${'o'.repeat(40)}` } })
  t.equal(right.code, EXIT.OK, right.err)
  t.match((await store.services.byName('first'))?.previous, { signingSecret: /^sealed:v1:/ }, 'the old signing secret stays sealed')
  const check = await cli(['check', '--offline', '--secrets-key', KEY, '--database', db])
  t.match(check.out, /ok {4}secrets: every service secret opens with the key given \(1 sealed\)/)

  const clear = await migrated(t)
  await cli(['service', 'add', 'plain', '--base-url', 'http://127.0.0.1:9', '--database', clear])
  const refused = await cli(['service', 'add', 'second', '--base-url', 'http://127.0.0.1:9', '--database', clear, '--secrets-key', KEY])
  t.equal(refused.code, EXIT.UNAVAILABLE)
  t.match(refused.err, /in the clear .*drop --secrets-key/)
})

t.test('check: database, secrets, URLs, reachability and clocks; a problem exits 4', async (t) => {
  const db = await migrated(t)
  const empty = await cli(['check', '--database', db])
  t.equal(empty.code, EXIT.OK)
  t.match(empty.out, /ok {4}database: schema version \d+ of \d+/)
  // Two services: one answering with a good clock, one whose clock is an hour off.
  const servers = await Promise.all([0, 3_600_000].map(async (skew) => {
    const server = createServer((req, res) => { res.setHeader('date', new Date(Date.now() + skew).toUTCString()); res.end() })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => server.close())
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`
  }))
  await cli(['service', 'add', 'good', '--base-url', servers[0]!, '--database', db])
  await cli(['service', 'add', 'skewed', '--base-url', servers[1]!, '--database', db])
  await cli(['service', 'add', 'public', '--base-url', 'http://sso.example.invalid', '--database', db])
  await cli(['service', 'add', 'off', '--base-url', 'http://off.example.invalid', '--database', db])
  await cli(['service', 'disable', 'off', '--database', db])
  await cli(['service', 'rotate', 'good', '--database', db])
  const checked = await cli(['check', '--database', db])
  t.equal(checked.code, EXIT.PROBLEMS, checked.out)
  t.match(checked.out, /warn {2}secrets: service signing secrets are stored in the clear/)
  t.match(checked.out, /ok {4}good reachable: .* answered 200, clock within \d+ s/)
  t.match(checked.out, /FAIL {2}skewed clock: its clock is 3[56]\d\d s off/)
  t.match(checked.out, /warn {2}public baseUrl: http:\/\/sso.example.invalid\/? is plain http on a non-loopback host/)
  t.match(checked.out, /warn {2}public reachable: /)
  t.match(checked.out, /warn {2}good rotation: old secrets still accepted until/)
  t.notMatch(checked.out, /(ok|warn|FAIL) +off /, 'a disabled service is not checked')
  const json = await cli(['check', '--offline', '--json', '--database', db])
  t.equal(json.code, EXIT.OK, 'offline: no clock or reachability findings')
  t.match(json.json, { ok: true, findings: [{ check: 'database', level: 'ok' }] })
  t.notOk(json.json.findings.some((f: { check: string }) => /reachable|clock/.test(f.check)))

  // Dead events are a warning with the way out.
  await cli(['user', 'add', 'alice', '--no-password', '--database', db])
  await cli(['user', 'disable', 'alice', '--database', db])
  const store = new SqliteGatewayStore({ filename: db })
  t.teardown(() => store.close())
  for (const e of await store.outbox.claim(Date.now(), 60_000, 1)) await store.outbox.fail(e.id, 'HTTP 410', null, Date.now())
  t.match((await cli(['check', '--offline', '--database', db])).out, /warn {2}\S+ events: 1 dead event\(s\): see `events dead`, then `events replay`/)
})

t.test('a password typed at a terminal: no echo, asked twice, backspace works, Ctrl+C cancels', async (t) => {
  const db = await migrated(t)
  const terminal = (typed: string[]): NodeJS.ReadableStream => {
    const input = Object.assign(new PassThrough(), { isTTY: true, raw: false, setRawMode (this: { raw: boolean }, raw: boolean) { this.raw = raw } })
    // Each answer once the prompt is up (raw mode on), as a person types it.
    let i = 0
    const orig = input.setRawMode.bind(input)
    input.setRawMode = function (raw: boolean) {
      orig(raw)
      if (raw && i < typed.length) {
        const text = typed[i++] as string
        setImmediate(() => { for (const part of text.split('|')) input.write(part) })
      }
    }
    return input
  }
  const ok = await cli(['user', 'add', 'alice', '--database', db], { stdin: terminal([`${PASSWORD}x|\u007f\r`, `${PASSWORD}\n`]) })
  t.equal(ok.code, EXIT.OK, ok.err)
  t.match(ok.err, /New password: \nAgain: \n/, 'prompts on stderr, nothing echoed')
  t.notMatch(ok.err + ok.out, new RegExp(PASSWORD), 'the password never printed')
  const differ = await cli(['user', 'passwd', 'alice', '--database', db], { stdin: terminal([`${PASSWORD}\r`, 'something-else-entirely\r']) })
  t.equal(differ.code, EXIT.FAILED)
  t.match(differ.err, /the two entries differ/)
  const cancelled = await cli(['user', 'passwd', 'alice', '--database', db], { stdin: terminal(['abc\u0003']) })
  t.equal(cancelled.code, EXIT.FAILED)
  t.match(cancelled.err, /cancelled/)
})

t.test('a PostgreSQL database: migrate, the same commands, check; an unreachable one is refused without its password', async (t) => {
  const url = await freshDatabase(t)
  const made = await cli(['migrate', '--json'], { env: { DATABASE_URL: url } })
  t.equal(made.code, EXIT.OK)
  t.same(made.json, { schemaVersion: 2 }, 'migrated to the newest PostgreSQL schema')
  t.equal((await cli(['migrate', '--database', url])).out, 'database schema at version 2\n', 'again: nothing to do')
  const added = await cli(['user', 'add', 'alice', '--password-stdin', '--database', url], { stdin: PASSWORD })
  t.equal(added.code, EXIT.OK)
  t.match((await cli(['user', 'list', '--json', '--database', url])).json, [{ username: 'alice' }], 'the user is in PostgreSQL')
  t.match((await cli(['user', 'add', 'alice', '--password-stdin', '--database', url], { stdin: PASSWORD })).code, EXIT.FAILED, 'a taken name')
  const checked = await cli(['check', '--offline', '--json', '--database', url])
  t.match(checked.json, { findings: [{ check: 'database', level: 'ok', detail: 'schema version 2 of 2' }] })
  const down = await cli(['user', 'list', '--database', 'postgres://sso:hunter2@127.0.0.1:1/x'])
  t.equal(down.code, EXIT.UNAVAILABLE)
  t.match(down.err, /cannot open the PostgreSQL database postgres:\/\/sso:\*\*\*@127\.0\.0\.1:1\/x/)
  t.notMatch(down.err, /hunter2/)
})

t.test('lists show states and flags; a one-word command with extra words; a service without a Date header', async (t) => {
  const db = await migrated(t)
  await cli(['user', 'add', 'bob', '--no-password', '--staff', '--superuser', '--database', db])
  await cli(['user', 'add', 'carol', '--no-password', '--email', 'carol@example.com', '--database', db])
  await cli(['user', 'disable', 'bob', '--database', db])
  const users = await cli(['user', 'list', '--database', db])
  t.match(users.out, /\nbob +disabled +staff,superuser +-\n/, 'a disabled admin without email')
  t.match(users.out, /\ncarol +active +- +carol@example\.com\n/, 'an active user without flags')

  const extra = await cli(['check', 'now', '--database', db])
  t.equal(extra.code, EXIT.USAGE)
  t.match(extra.err, /check takes 0 argument\(s\), got 1/)

  const server = createServer((req, res) => { res.sendDate = false; res.end() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  await cli(['service', 'add', 'nodate', '--base-url', url, '--database', db])
  await cli(['service', 'add', 'off', '--base-url', url, '--database', db])
  await cli(['service', 'disable', 'off', '--database', db])
  t.match((await cli(['service', 'list', '--database', db])).out, /\noff +disabled +fastify-sso /, 'a disabled service')
  const checked = await cli(['check', '--database', db])
  t.equal(checked.code, EXIT.OK, checked.out)
  t.match(checked.out, /ok {4}nodate reachable: \S+ answered 200\n/, 'no clock claim without a Date header')

  const store = new SqliteGatewayStore({ filename: db })
  t.teardown(() => store.close())
  const user = (await store.users.byUsername('carol'))!
  const now = Date.now()
  await store.sessions.set('sid_x', { cookie: {}, user: user.id, sso: 'sso_noip', createdAt: now, seenAt: now, ip: null, ua: 'test' } as unknown as Session,
    { user: user.id, ssoSession: 'sso_noip', expiresAt: now + 60_000 })
  t.match((await cli(['sessions', 'list', 'carol', '--database', db])).out, /\nsso_noip +\S+ +\S+ +- +-\n/, 'no address, no services: dashes')
})

t.test('a database another writer holds is unavailable (exit 3), nothing changed', async (t) => {
  const db = await migrated(t)
  const Database = (await import('better-sqlite3')).default
  const holder = new Database(db)
  holder.prepare('BEGIN IMMEDIATE').run()
  t.teardown(() => { holder.prepare('ROLLBACK').run(); holder.close() })
  const busy = await cli(['user', 'add', 'dave', '--no-password', '--database', db])
  t.equal(busy.code, EXIT.UNAVAILABLE, busy.err)
  t.match(busy.err, /sso-gateway: database: /)
})

t.test('a PostgreSQL table another client holds locked: the command times out unavailable (exit 3)', async (t) => {
  const url = await freshDatabase(t)
  t.equal((await cli(['migrate', '--database', url])).code, EXIT.OK)
  const holder = new pg.Client({ connectionString: url })
  await holder.connect()
  t.teardown(async () => { await holder.query('ROLLBACK'); await holder.end() })
  await holder.query('BEGIN')
  await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')
  const busy = await cli(['user', 'add', 'dave', '--no-password', '--json', '--database', url])
  t.equal(busy.code, EXIT.UNAVAILABLE, busy.err)
  t.match(busy.json, { code: 'FST_SSO_GATEWAY_UNAVAILABLE' })
  t.match(busy.err, /sso-gateway: database: /)
})

t.test('a PostgreSQL database that does not exist is refused with its reason', async (t) => {
  const missing = await cli(['user', 'list', '--database', 'postgres://postgres@127.0.0.1:5432/sso_t_does_not_exist'])
  t.equal(missing.code, EXIT.UNAVAILABLE)
  t.match(missing.err, /cannot open the PostgreSQL database .*sso_t_does_not_exist: .*does not exist/)
})
