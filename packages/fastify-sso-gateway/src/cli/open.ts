import { existsSync } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { Gateway } from '../gateway.js'
import { OutboxDispatcher } from '../outbox/dispatcher.js'
import { OWASP_MINIMUM, PasswordHasher } from '../passwords.js'
import { protectSecrets, SecretBox } from '../sealed-secrets.js'
import { SqliteGatewayStore } from '../store/sqlite.js'
import type { GatewayStore } from '../store/store.js'

/** Why the CLI could not open the gateway's database (exit code 3). */
export class UnavailableError extends Error {}

/** What a command works with: the gateway's own logic over the same database a running gateway uses. */
export interface Opened {
  store: GatewayStore
  gateway: Gateway
  /** The SQLite store, when the database is a file (for `migrate` and `check`). */
  sqlite: SqliteGatewayStore | null
  close: () => Promise<void>
}

export interface OpenOptions {
  database: string
  secretsKey: readonly string[]
  minPasswordLength: number
  log: FastifyBaseLogger
  /** Create the database if it does not exist (`migrate`). @default false */
  create?: boolean
}

/** Opens the store named by `database`; a file that does not exist is refused unless `create`. */
function openStore (o: OpenOptions): SqliteGatewayStore {
  if (/^postgres(ql)?:\/\//i.test(o.database)) {
    throw new UnavailableError('PostgreSQL databases are not supported by this version of the gateway')
  }
  if (o.database !== ':memory:' && !o.create && !existsSync(o.database)) {
    throw new UnavailableError(`no database at ${o.database} (a typo? \`sso-gateway migrate --database ${o.database}\` creates one)`)
  }
  try {
    return new SqliteGatewayStore({ filename: o.database })
  } catch (err) {
    throw new UnavailableError(`cannot open the SQLite file ${o.database}: ${(err as Error).message}`)
  }
}

/**
 * The gateway's logic without a server: users, services and events are changed exactly as the
 * plugin changes them, and the events they cause wait in the outbox for the running gateway to
 * deliver (this process never sends them: its dispatcher is closed).
 */
export async function openGateway (o: OpenOptions): Promise<Opened> {
  const raw = openStore(o)
  let store: GatewayStore
  try {
    const services = await raw.services.list()
    if (o.secretsKey.length > 0 && services.length > 0 && !services.some((s) => SecretBox.isSealed(s.signingSecret))) {
      // New secrets would be sealed while the gateway reads them in the clear: it could not sign with them.
      throw new UnavailableError('the database keeps its service secrets in the clear (the gateway runs without secretsKey): drop --secrets-key / SSO_SECRETS_KEY')
    }
    store = await protectSecrets(raw, o.secretsKey, false)
  } catch (err) {
    await raw.close()
    if (err instanceof UnavailableError) throw err
    throw new UnavailableError((err as Error).message)
  }
  const outbox = new OutboxDispatcher({ store, log: o.log, timeout: 10_000, interval: 1000 })
  await outbox.close()
  const gateway = new Gateway({
    store,
    hasher: new PasswordHasher(OWASP_MINIMUM, 1),
    outbox,
    log: o.log,
    minPasswordLength: o.minPasswordLength,
    tokenTtl: { pending: 600_000, authenticated: 120_000 }
  })
  return { store, gateway, sqlite: raw, close: async () => { await store.close() } }
}
