import t from 'tap'
import { PostgresGatewayStore } from '../../src/index.js'
import { freshDatabase } from '../pg-helpers.js'
import { storeContract } from './suite.js'

// The machine's PostgreSQL, a database of its own per test, migrated on first use.
storeContract(t, async (t) => new PostgresGatewayStore({ connectionString: await freshDatabase(t) }))
