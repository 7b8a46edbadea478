import t from 'tap'
import { FASTIFY_REGISTER_KEYS, nearestName, showOption, unknownOption } from '../src/index.js'

const KNOWN = ['gatewayUrl', 'gatewayInternalUrl', 'idleTimeout', 'absoluteTimeout', 'token']

t.test('nearestName: a likely misspelling gets the known name, anything else null', async (t) => {
  t.equal(nearestName('idleTimout', KNOWN), 'idleTimeout', 'a letter missing')
  t.equal(nearestName('gatewayInternalURL', KNOWN), 'gatewayInternalUrl', 'case is ignored')
  t.equal(nearestName('tokn', KNOWN), 'token')
  t.equal(nearestName('colour', KNOWN), null, 'nothing close')
  t.equal(nearestName('x', KNOWN), null, 'a short name must be nearly exact')
  t.equal(nearestName('anything', []), null)
})

t.test('unknownOption: the first unknown key, with a suggestion or the known names', async (t) => {
  t.equal(unknownOption({ token: 'x', idleTimeout: 1 }, KNOWN), null)
  t.same(unknownOption({ token: 'x', idleTimout: 1 }, KNOWN), { name: 'idleTimout', detail: 'is not an option; did you mean "idleTimeout"?' })
  t.same(unknownOption({ colour: 1 }, ['a', 'b']), { name: 'colour', detail: 'is not an option (known options: a, b)' })
  t.same(unknownOption({ prefix: '/x' }, KNOWN)?.name, 'prefix', 'Fastify keys only when allowed')
  t.equal(unknownOption({ prefix: '/x', logLevel: 'warn', logSerializers: {} }, KNOWN, FASTIFY_REGISTER_KEYS), null)
})

t.test('showOption: values as JSON, secrets never', async (t) => {
  t.equal(showOption('abc', false), '"abc"')
  t.equal(showOption(42, false), '42')
  t.equal(showOption(undefined, false), 'undefined')
  t.equal(showOption(null, false), 'null')
  t.equal(showOption(() => 1, false), 'a function')
  t.equal(showOption(Symbol('s'), false), 'Symbol(s)')
  t.equal(showOption(10n, false), '10', 'what JSON cannot show is shown as text')
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.equal(showOption(circular, false), '[object Object]')
  t.equal(showOption('x'.repeat(300), false), '"' + 'x'.repeat(199) + '...')

  t.equal(showOption('hunter2', true), '<redacted string of 7 characters>')
  t.equal(showOption(['hunter2', 'x'], true), '<redacted array of 2>')
  t.equal(showOption(Buffer.from('hunter2'), true), '<redacted Buffer>')
  t.equal(showOption({ k: 'hunter2' }, true), '<redacted Object>')
  t.equal(showOption(Object.create(null), true), '<redacted object>')
  t.equal(showOption(1234, true), '<redacted number>')
  t.equal(showOption(undefined, true), 'undefined', 'a missing secret can be said to be missing')
  t.equal(showOption(null, true), 'null')
})
