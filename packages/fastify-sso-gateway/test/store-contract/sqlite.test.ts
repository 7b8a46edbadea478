import { join } from 'node:path'
import t from 'tap'
import { SqliteGatewayStore } from '../../src/index.js'
import { storeContract } from './suite.js'

// A real file in WAL mode, as the gateway opens it.
storeContract(t, async (t) => new SqliteGatewayStore({ filename: join(t.testdir({}), 'gateway.sqlite') }))
