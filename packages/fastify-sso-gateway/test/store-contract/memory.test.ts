import t from 'tap'
import { MemoryGatewayStore } from '../../src/index.js'
import { storeContract } from './suite.js'

storeContract(t, async () => new MemoryGatewayStore())
