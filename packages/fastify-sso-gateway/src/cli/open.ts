import { existsSync } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import { Gateway } from '../gateway.js'
import { OutboxDispatcher } from '../outbox/dispatcher.js'
import { OWASP_MINIMUM, PasswordHasher } from '../passwords.js'
import { protectSecrets, SecretBox } from '../sealed-secrets.js'
import { isPostgresUrl, redactUrl } from '../options.js'
import { POSTGRES_SCHEMA_VERSION, PostgresGatewayStore } from '../store/postgres.js'
import { SCHEMA_VERSION, SqliteGatewayStore } from '../store/sqlite.js'
import type { GatewayStore } from '../store/store.js'

/** Why the CLI could not open the gateway's database (exit code 3). */
export class UnavailableError extends Error {}

/** What a command works with: the gateway's own logic over the same database a running gateway uses. */
export interface Opened {
  store: GatewayStore
  gateway: Gateway
  /** The store as the database holds it (service secrets sealed, when a key is used). */
  raw: GatewayStore
  /** The schema version the database is at (after this open's migrations). */
  schemaVersion: () => Promise<number>
  /** The newest schema version this code knows, for this kind of database. */
  latest: number
  close: () => Promise<void>
}

interface RawStore { raw: GatewayStore, schemaVersion: () => Promise<number>, latest: number }

export interface OpenOptions {
  database: string
  secretsKey: readonly string[]
  minPasswordLength: number
  log: FastifyBaseLogger
  /** Create the database if it does not exist (`migrate`). @default false */
  create?: boolean
}

/**
 * Opens the store named by `database`, migrated: a PostgreSQL URL (the database must exist;
 * its schema is brought up to date, under the lock the gateways take), or a SQLite file (one
 * that does not exist is refused unless `create`).
 */
async function openStore (o: OpenOptions): Promise<RawStore> {
  if (isPostgresUrl(o.database)) {
    const store = new PostgresGatewayStore({ connectionString: o.database, max: 2 })
    try {
      await store.ready()
    } catch (err) {
      await store.close()
      const cause = ((err as Error).cause ?? err) as Error
      throw new UnavailableError(`cannot open the PostgreSQL database ${redactUrl(o.database)}: ${cause.message}`)
    }
    return { raw: store, schemaVersion: async () => await store.schemaVersion(), latest: POSTGRES_SCHEMA_VERSION }
  }
  if (o.database !== ':memory:' && !o.create && !existsSync(o.database)) {
    throw new UnavailableError(`no database at ${o.database} (a typo? \`sso-gateway migrate --database ${o.database}\` creates one)`)
  }
  try {
    const store = new SqliteGatewayStore({ filename: o.database })
    return { raw: store, schemaVersion: async () => store.schemaVersion, latest: SCHEMA_VERSION }
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
  const opened = await openStore(o)
  const raw = opened.raw
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
  return { store, gateway, ...opened, close: async () => { await store.close() } }
}
