import { parseArgs } from 'node:util'
import type { FastifyBaseLogger } from 'fastify'
import { request } from 'undici'
import { actingAs } from '../gateway.js'
import { SecretBox } from '../sealed-secrets.js'
import type { OutboxEvent } from '../store/store.js'
import type { GatewayService, GatewayUser } from '../types.js'
import { openGateway, UnavailableError, type Opened } from './open.js'
import { readPassword, type Input } from './password.js'

/** The CLI's exit codes. */
export const EXIT = Object.freeze({
  /** Done. */
  OK: 0,
  /** The command ran and was refused: no such user or service, invalid input, a name taken. */
  FAILED: 1,
  /** Wrong usage: unknown command or option, missing argument. Nothing was changed. */
  USAGE: 2,
  /** The database cannot be opened, or the secrets key does not fit it. Nothing was changed. */
  UNAVAILABLE: 3,
  /** `check` found a problem. */
  PROBLEMS: 4
})

/** Where the CLI reads and writes (the process's own streams; tests pass their own). */
export interface CliIo {
  stdin: Input
  stdout: { write: (s: string) => unknown }
  stderr: { write: (s: string) => unknown }
  env: Record<string, string | undefined>
}

class UsageError extends Error {}

export const HELP = `Usage: sso-gateway <command> [options]

Works on the same database as a running gateway; the events a change causes wait in its
outbox and the running gateway delivers them.

Commands
  user add <username>          create a user (password from a prompt, --password-stdin or --no-password)
      [--email E] [--display-name N] [--staff] [--superuser]
  user list [--prefix P] [--after NAME] [--limit N]
  user disable <username>      disable and sign out everywhere
  user enable <username>
  user passwd <username>       set a new password (prompt or --password-stdin); ends every session
  service add <name> --base-url URL [--event-url URL] [--protocol fastify-sso|django-sso-1|django-sso-2]
      [--fields a,b] [--fresh-login]      prints the new secrets once
  service list
  service rotate <name> [--only secret|signing] [--overlap 24h]
                               new secrets, printed once; the old ones work for the overlap
  service enable|disable <name>
  events status                queue depth, dead events and last error per service
  events dead [--service S] [--limit N]
  events replay <event-id>...  | events replay --all [--service S]
  sessions list <username>
  sessions revoke <username> [<sso-session-id>]   one SSO session, or all of them
  migrate                      create the database or bring its schema up to date
  check [--offline]            configuration sanity: database, secrets, service URLs, clocks

Options
  --database <file|postgres://...>  env SSO_DATABASE or DATABASE_URL
  --secrets-key <key>          the gateway's secretsKey (repeat for old keys); env SSO_SECRETS_KEY
                               (space-separated). Prefer the environment: argv is visible to others.
  --min-password-length <n>    as the gateway's minPasswordLength (default 15)
  --json                       machine-readable output on stdout
  -h, --help                   this text

Exit codes
  0 done · 1 refused (not found, invalid, exists) · 2 usage · 3 database or secrets key unusable
  4 check found a problem
`

const OPTIONS = {
  database: { type: 'string' },
  'secrets-key': { type: 'string', multiple: true },
  'min-password-length': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'password-stdin': { type: 'boolean' },
  'no-password': { type: 'boolean' },
  email: { type: 'string' },
  'display-name': { type: 'string' },
  staff: { type: 'boolean' },
  superuser: { type: 'boolean' },
  prefix: { type: 'string' },
  after: { type: 'string' },
  limit: { type: 'string' },
  'base-url': { type: 'string' },
  'event-url': { type: 'string' },
  protocol: { type: 'string' },
  fields: { type: 'string' },
  'fresh-login': { type: 'boolean' },
  only: { type: 'string' },
  overlap: { type: 'string' },
  service: { type: 'string' },
  all: { type: 'boolean' },
  offline: { type: 'boolean' }
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS, allowPositionals: true }>>['values']

const GLOBAL = ['database', 'secrets-key', 'min-password-length', 'json', 'help']

/** Each command: its words, how many arguments, which options it takes. */
const COMMANDS: Record<string, { args: [number, number], options: string[] }> = {
  'user add': { args: [1, 1], options: ['password-stdin', 'no-password', 'email', 'display-name', 'staff', 'superuser'] },
  'user list': { args: [0, 0], options: ['prefix', 'after', 'limit'] },
  'user disable': { args: [1, 1], options: [] },
  'user enable': { args: [1, 1], options: [] },
  'user passwd': { args: [1, 1], options: ['password-stdin'] },
  'service add': { args: [1, 1], options: ['base-url', 'event-url', 'protocol', 'fields', 'fresh-login'] },
  'service list': { args: [0, 0], options: [] },
  'service rotate': { args: [1, 1], options: ['only', 'overlap'] },
  'service enable': { args: [1, 1], options: [] },
  'service disable': { args: [1, 1], options: [] },
  'events status': { args: [0, 0], options: [] },
  'events dead': { args: [0, 0], options: ['service', 'limit'] },
  'events replay': { args: [0, 100], options: ['all', 'service'] },
  'sessions list': { args: [1, 1], options: [] },
  'sessions revoke': { args: [1, 2], options: [] },
  migrate: { args: [0, 0], options: [] },
  check: { args: [0, 0], options: ['offline'] }
}

/** A duration: `90s`, `30m`, `24h`, `7d`, or milliseconds. */
export function parseDuration (text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) throw new UsageError(`not a duration: ${JSON.stringify(text)} (use 90s, 30m, 24h, 7d or milliseconds)`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms']
  return Number(m[1]) * unit
}

function positiveInt (name: string, text: string | undefined, def: number): number {
  if (text === undefined) return def
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) throw new UsageError(`--${name} must be a positive whole number, got ${JSON.stringify(text)}`)
  return Number(text)
}

const silentLog = (stderr: CliIo['stderr']): FastifyBaseLogger => {
  const noop = (): void => {}
  const log = {
    level: 'error',
    fatal: noop,
    trace: noop,
    debug: noop,
    info: noop,
    warn: noop,
    silent: noop,
    // Only what the operator must see: a failure the command could not report itself (the
    // gateway's audit record failing to write; its outbox never runs here). Nothing takes a child.
    /* c8 ignore next: defensive, needs a store failing mid-command */
    error: (obj: unknown, msg?: string) => { stderr.write(`sso-gateway: ${msg ?? String(obj)}\n`) }
  }
  return log as unknown as FastifyBaseLogger
}

const iso = (ms: number | null): string => ms === null ? '-' : new Date(ms).toISOString()

/** A plain text table: a header row and aligned columns. */
function table (head: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)\n'
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n') + '\n'
}

const userRow = (u: GatewayUser): string[] => [u.username, u.isActive ? 'active' : 'disabled', [u.isStaff ? 'staff' : '', u.isSuperuser ? 'superuser' : ''].filter(Boolean).join(',') || '-', u.email ?? '-']
const serviceRow = (s: GatewayService): string[] => [s.name, s.enabled ? 'enabled' : 'disabled', s.protocol, s.baseUrl, s.eventUrl]

interface Result {
  /** What `--json` prints. */
  json: unknown
  /** What a person reads. */
  text: string
  code?: number
}

/**
 * Runs one command line (without `node` and the script) and returns the exit code. Prints to
 * `io`; never calls `process.exit`, so tests can run it in-process.
 */
export async function main (argv: string[], io: CliIo): Promise<number> {
  let values: Values
  let positionals: string[]
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }))
  } catch (err) {
    io.stderr.write(`sso-gateway: ${(err as Error).message}\n\n${HELP}`)
    return EXIT.USAGE
  }
  const json = values.json === true
  if (values.help === true || positionals.length === 0) {
    io.stdout.write(HELP)
    return positionals.length === 0 && values.help !== true ? EXIT.USAGE : EXIT.OK
  }
  const fail = (code: number, message: string, errorCode?: string): number => {
    if (json) io.stdout.write(JSON.stringify({ error: message, ...(errorCode === undefined ? {} : { code: errorCode }) }) + '\n')
    io.stderr.write(`sso-gateway: ${message}\n`)
    return code
  }
  const name = positionals.slice(0, 2).join(' ')
  const key = COMMANDS[name] !== undefined ? name : COMMANDS[positionals[0] as string] !== undefined ? positionals[0] as string : null
  if (key === null) return fail(EXIT.USAGE, `unknown command: ${positionals.join(' ')} (sso-gateway --help lists them)`)
  const spec = COMMANDS[key] as (typeof COMMANDS)[string]
  const args = positionals.slice(key.split(' ').length)
  const given = Object.keys(values).filter((k) => !GLOBAL.includes(k))
  const stray = given.find((k) => !spec.options.includes(k))
  if (stray !== undefined) return fail(EXIT.USAGE, `${key} takes no --${stray}`)
  if (args.length < spec.args[0] || args.length > spec.args[1]) {
    return fail(EXIT.USAGE, `${key} takes ${spec.args[0] === spec.args[1] ? spec.args[0] : `${spec.args[0]} to ${spec.args[1]}`} argument(s), got ${args.length}`)
  }

  const database = values.database ?? io.env.SSO_DATABASE ?? io.env.DATABASE_URL
  if (database === undefined || database === '') return fail(EXIT.USAGE, 'no database: give --database <file|postgres://...> or set SSO_DATABASE')
  const secretsKey = values['secrets-key'] ?? (io.env.SSO_SECRETS_KEY ?? '').split(/\s+/).filter((k) => k !== '')
  if (secretsKey.some((k) => k.length < 32)) return fail(EXIT.USAGE, 'a secrets key must be at least 32 characters')
  let opened: Opened | undefined
  try {
    const minPasswordLength = positiveInt('min-password-length', values['min-password-length'], 15)
    opened = await openGateway({ database, secretsKey, minPasswordLength, log: silentLog(io.stderr), create: key === 'migrate' })
    const result = await actingAs('cli', async () => await run(key, args, values, opened as Opened, io, secretsKey))
    io.stdout.write(json ? JSON.stringify(result.json, null, 2) + '\n' : result.text)
    return result.code ?? EXIT.OK
  } catch (err) {
    if (err instanceof UsageError) return fail(EXIT.USAGE, err.message)
    if (err instanceof UnavailableError) return fail(EXIT.UNAVAILABLE, err.message)
    const e = err as { code?: unknown, statusCode?: unknown, message: string }
    if (typeof e.code === 'string' && e.code.startsWith('FST_SSO_GATEWAY_') && e.code !== 'FST_SSO_GATEWAY_UNAVAILABLE') return fail(EXIT.FAILED, e.message, e.code)
    if (typeof e.code === 'string' && (e.code.startsWith('SQLITE_') || e.code === 'FST_SSO_GATEWAY_UNAVAILABLE')) return fail(EXIT.UNAVAILABLE, `database: ${e.message}`, e.code)
    /* c8 ignore start: a bug, not an outcome: shown with its stack */
    io.stderr.write(`sso-gateway: unexpected error\n${String((err as Error).stack)}\n`)
    return EXIT.FAILED
  } /* c8 ignore stop */ finally {
    await opened?.close()
  }
}

async function password (values: Values, io: CliIo): Promise<string> {
  const p = await readPassword(io.stdin, io.stderr, values['password-stdin'] === true)
  if (p === null) throw new UsageError('no password: stdin is not a terminal; pipe it with --password-stdin (never as an argument)')
  return p
}

async function run (command: string, args: string[], values: Values, o: Opened, io: CliIo, secretsKey: readonly string[]): Promise<Result> {
  const { gateway } = o
  const arg = args[0] as string
  switch (command) {
    case 'user add': {
      if (values['no-password'] === true && values['password-stdin'] === true) throw new UsageError('--no-password and --password-stdin exclude each other')
      const pw = values['no-password'] === true ? undefined : await password(values, io)
      const user = await gateway.createUser({
        username: arg,
        ...(pw === undefined ? {} : { password: pw }),
        email: values.email ?? null,
        displayName: values['display-name'] ?? null,
        isStaff: values.staff === true,
        isSuperuser: values.superuser === true
      })
      return { json: user, text: `created user ${user.username}${pw === undefined ? ' (no password: cannot sign in with one)' : ''}\n` }
    }
    case 'user list': {
      const users = await gateway.listUsers({ prefix: values.prefix ?? '', after: values.after ?? '', limit: positiveInt('limit', values.limit, 100) })
      return { json: users, text: table(['USERNAME', 'STATE', 'FLAGS', 'EMAIL'], users.map(userRow)) }
    }
    case 'user disable':
    case 'user enable': {
      const user = await gateway.updateUser(arg, { isActive: command === 'user enable' })
      return { json: user, text: `${user.username} is ${user.isActive ? 'enabled' : 'disabled and signed out everywhere'}\n` }
    }
    case 'user passwd': {
      const ended = await gateway.changePassword(arg, await password(values, io), { endSessions: 'all' })
      return { json: { username: arg, sessionsEnded: ended }, text: `password changed; ${ended} session(s) ended\n` }
    }
    case 'service add': {
      if (values['base-url'] === undefined) throw new UsageError('service add needs --base-url')
      const { service, secret, signingSecret } = await gateway.registerService({
        name: arg,
        baseUrl: values['base-url'],
        ...(values['event-url'] === undefined ? {} : { eventUrl: values['event-url'] }),
        ...(values.protocol === undefined ? {} : { protocol: values.protocol as 'fastify-sso' }),
        ...(values.fields === undefined ? {} : { fields: values.fields.split(',').map((f) => f.trim()).filter((f) => f !== '') }),
        requireFreshLogin: values['fresh-login'] === true
      })
      return {
        json: { service, secret, signingSecret },
        text: `registered ${service.name}\n\nGive the service these; they are shown only now:\n  secret         ${secret}\n  signingSecret  ${signingSecret}\n`
      }
    }
    case 'service list': {
      const services = await gateway.listServices()
      return { json: services, text: table(['NAME', 'STATE', 'PROTOCOL', 'BASE URL', 'EVENT URL'], services.map(serviceRow)) }
    }
    case 'service rotate': {
      const only = values.only
      if (only !== undefined && only !== 'secret' && only !== 'signing') throw new UsageError('--only is secret or signing')
      const rotated = await gateway.rotateSecrets(arg, {
        secret: only !== 'signing', signingSecret: only !== 'secret', overlap: values.overlap === undefined ? undefined : parseDuration(values.overlap)
      })
      const lines = [`rotated ${arg}; the new secrets are shown only now:`]
      if (rotated.secret !== undefined) lines.push(`  secret         ${rotated.secret}`)
      if (rotated.signingSecret !== undefined) lines.push(`  signingSecret  ${rotated.signingSecret}`)
      lines.push(rotated.overlapUntil === null ? 'The old ones stopped working now.' : `The old ones keep working until ${iso(rotated.overlapUntil)}: update the service before then.`)
      return { json: rotated, text: lines.join('\n') + '\n' }
    }
    case 'service enable':
    case 'service disable': {
      const service = await gateway.setServiceEnabled(arg, command === 'service enable')
      return { json: service, text: `${service.name} is ${service.enabled ? 'enabled' : 'disabled'}\n` }
    }
    case 'events status': {
      const names = new Map((await gateway.listServices()).map((s) => [s.id, s.name]))
      const rows = await Promise.all((await gateway.events.status()).map(async (s) => ({
        service: names.get(s.serviceId) as string, // events reference their service (a foreign key)
        pending: s.pending,
        dead: s.dead,
        failingSince: s.failingSince,
        lastError: await gateway.lastDeliveryError(s.serviceId)
      })))
      return {
        json: rows,
        text: table(['SERVICE', 'PENDING', 'DEAD', 'FAILING SINCE', 'LAST ERROR'], rows.map((r) => [r.service, String(r.pending), String(r.dead), iso(r.failingSince), r.lastError ?? '-']))
      }
    }
    case 'events dead': {
      const events = await dead(o, values.service, positiveInt('limit', values.limit, 100))
      return {
        // Every event the gateway queues has a type; a dead one always has the error that killed it.
        json: events.map(({ payload, ...e }) => ({ ...e, type: (JSON.parse(payload) as { type: string }).type })),
        text: table(['ID', 'SERVICE', 'TYPE', 'ATTEMPTS', 'CREATED', 'LAST ERROR'], events.map((e) =>
          [e.id, e.service, (JSON.parse(e.payload) as { type: string }).type, String(e.attempts), iso(e.createdAt), e.lastError as string]))
      }
    }
    case 'events replay': {
      if ((values.all === true) === (args.length > 0)) throw new UsageError('events replay takes event ids, or --all (not both)')
      if (values.service !== undefined && values.all !== true) throw new UsageError('--service goes with --all')
      const ids = values.all === true ? (await dead(o, values.service, 10_000)).map((e) => e.id) : args
      const replayed: string[] = []
      const notDead: string[] = []
      for (const id of ids) (await gateway.events.replay(id) ? replayed : notDead).push(id)
      const text = `${replayed.length} event(s) queued again${notDead.length > 0 ? `; not dead (or unknown): ${notDead.join(', ')}` : ''}\n`
      return { json: { replayed, notDead }, text, code: notDead.length > 0 ? EXIT.FAILED : EXIT.OK }
    }
    case 'sessions list': {
      const sessions = await gateway.listSessions(arg)
      return {
        json: sessions,
        text: table(['ID', 'STARTED', 'LAST SEEN', 'IP', 'SERVICES'], sessions.map((s) => [s.id, iso(s.createdAt), iso(s.lastSeenAt), s.ip ?? '-', s.services.join(',') || '-']))
      }
    }
    case 'sessions revoke': {
      if (args[1] === undefined) {
        const ended = await gateway.logoutUser(arg)
        return { json: { username: arg, sessionsEnded: ended }, text: `${arg} signed out everywhere (${ended} gateway session(s))\n` }
      }
      const ok = await gateway.revokeSession(arg, args[1])
      return { json: { username: arg, session: args[1], revoked: ok }, text: ok ? 'session ended\n' : `no live session ${args[1]} of ${arg}\n`, code: ok ? EXIT.OK : EXIT.FAILED }
    }
    case 'migrate': {
      const version = await o.schemaVersion()
      return { json: { schemaVersion: version }, text: `database schema at version ${version}\n` }
    }
    default:
      return await check(o, values.offline === true, secretsKey)
  }
}

async function dead (o: Opened, service: string | undefined, limit: number): Promise<Array<OutboxEvent & { service: string }>> {
  const services = await o.gateway.listServices()
  const names = new Map(services.map((s) => [s.id, s.name]))
  if (service !== undefined && !services.some((s) => s.name === service)) throw Object.assign(new Error(`No service ${service}`), { code: 'FST_SSO_GATEWAY_SERVICE_NOT_FOUND' })
  return (await o.gateway.events.dead(10_000))
    .map((e) => ({ ...e, service: names.get(e.serviceId) as string })) // events reference their service (a foreign key)
    .filter((e) => service === undefined || e.service === service)
    .slice(0, limit)
}

interface Finding { check: string, level: 'ok' | 'warn' | 'fail', detail: string }

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|[^.]+\.localhost)$/

/** Configuration sanity, as far as the database and the network can tell. */
async function check (o: Opened, offline: boolean, secretsKey: readonly string[]): Promise<Result> {
  const findings: Finding[] = []
  const add = (check: string, level: Finding['level'], detail: string): void => { findings.push({ check, level, detail }) }
  const version = await o.schemaVersion()
  add('database', 'ok', `schema version ${version} of ${o.latest}`)
  const services = await o.gateway.listServices()
  const raw = await o.raw.services.list()
  if (secretsKey.length === 0 && raw.length > 0) {
    add('secrets', 'warn', 'service signing secrets are stored in the clear: set the gateway\'s secretsKey (and SSO_SECRETS_KEY here)')
  } else if (secretsKey.length > 0) {
    add('secrets', 'ok', `every service secret opens with the key given (${raw.filter((s) => SecretBox.isSealed(s.signingSecret)).length} sealed)`)
  }
  for (const s of services.filter((s) => s.enabled)) {
    for (const [field, value] of [['baseUrl', s.baseUrl], ['eventUrl', s.eventUrl]] as const) {
      const url = new URL(value)
      if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) add(`${s.name} ${field}`, 'warn', `${value} is plain http on a non-loopback host: secrets and cookies travel in the clear`)
    }
    if (s.overlapUntil !== null) add(`${s.name} rotation`, 'warn', `old secrets still accepted until ${iso(s.overlapUntil)}`)
    if (offline) continue
    try {
      const res = await request(s.eventUrl, { method: 'HEAD', headersTimeout: 3000, bodyTimeout: 3000, signal: AbortSignal.timeout(3000) })
      await res.body.dump()
      const date = Date.parse(String(res.headers.date))
      const skew = Number.isNaN(date) ? null : Math.round((date - Date.now()) / 1000)
      if (skew !== null && Math.abs(skew) > 60) {
        add(`${s.name} clock`, 'fail', `its clock is ${skew} s off this machine's: signed events older than 300 s are refused, keep clocks in sync (NTP)`)
      } else {
        add(`${s.name} reachable`, 'ok', `${s.eventUrl} answered ${res.statusCode}${skew === null ? '' : `, clock within ${Math.abs(skew)} s`}`)
      }
    } catch (err) {
      add(`${s.name} reachable`, 'warn', `${s.eventUrl}: ${(err as Error).message} (events wait in the outbox until it answers)`)
    }
  }
  for (const st of await o.gateway.events.status()) {
    const name = (services.find((s) => s.id === st.serviceId) as GatewayService).name // a foreign key
    if (st.dead > 0) add(`${name} events`, 'warn', `${st.dead} dead event(s): see \`events dead\`, then \`events replay\``)
  }
  const failed = findings.some((f) => f.level === 'fail')
  return {
    json: { ok: !failed, findings },
    text: findings.map((f) => `${f.level === 'ok' ? 'ok  ' : f.level === 'warn' ? 'warn' : 'FAIL'}  ${f.check}: ${f.detail}`).join('\n') + '\n',
    code: failed ? EXIT.PROBLEMS : EXIT.OK
  }
}
