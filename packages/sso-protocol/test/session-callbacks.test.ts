import t from 'tap'
import { callbackSessionStore } from '../src/index.js'

t.test('callbackSessionStore gives an async store the callback shape @fastify/session calls', async (t) => {
  const rows = new Map<string, { n: number }>()
  const store = callbackSessionStore<{ n: number }>({
    get: async (sid) => rows.get(sid) ?? null,
    set: async (sid, s) => { if (sid === 'bad') throw new Error('refused'); rows.set(sid, s) },
    destroy: async (sid) => { if (sid === 'bad') throw new Error('refused'); rows.delete(sid) }
  })
  const call = async <R>(fn: (cb: (err?: unknown, value?: R) => void) => void): Promise<{ err: unknown, value: R | undefined }> =>
    await new Promise((resolve) => fn((err, value) => resolve({ err, value })))
  t.same(await call<void>((cb) => store.set('a', { n: 1 }, cb)), { err: undefined, value: undefined })
  t.same(await call<{ n: number } | null>((cb) => store.get('a', cb)), { err: null, value: { n: 1 } })
  t.same(await call<void>((cb) => store.destroy('a', cb)), { err: undefined, value: undefined })
  t.same(await call<{ n: number } | null>((cb) => store.get('a', cb)), { err: null, value: null }, 'gone')
  t.match((await call<void>((cb) => store.set('bad', { n: 2 }, cb))).err, { message: 'refused' }, 'a rejection reaches the callback')
  t.match((await call<void>((cb) => store.destroy('bad', cb))).err, { message: 'refused' })
  const failing = callbackSessionStore<{ n: number }>({ get: async () => { throw new Error('down') }, set: async () => {}, destroy: async () => {} })
  t.match((await call<{ n: number } | null>((cb) => failing.get('a', cb))).err, { message: 'down' })
})
