// Each PostgreSQL test gets its own database on the machine's server (sso_t_<hex>), dropped at
// teardown: tests run in parallel, and other checkouts use the same server.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'

/** The server the tests use: the machine's PostgreSQL, trust auth on loopback (`.ci/run` starts it). */
export const PG_SERVER = 'postgres://postgres@127.0.0.1:5432'

async function admin<T> (fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: `${PG_SERVER}/postgres` })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A fresh, empty database for this test: its URL. Dropped (connections cut) when the test ends. */
export async function freshDatabase (t: Test): Promise<string> {
  const name = `sso_t_${randomBytes(6).toString('hex')}`
  await admin(async (c) => await c.query(`CREATE DATABASE ${name}`))
  t.teardown(async () => { await admin(async (c) => await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) })
  return `${PG_SERVER}/${name}`
}
