import type { Test } from 'tap'
import type { LimitStore } from '../src/index.js'

/**
 * What every LimitStore must do (memory, Redis, yours): run by limit-store.test.ts against
 * each implementation. `make()` gives a fresh, empty store; `again()`, when given, a second
 * store over the same data (another process's view of a shared store).
 */
export function limitStoreSuite (t: Test, make: (t: Test) => { store: LimitStore, again?: LimitStore }): void {
  t.test('hit counts within a window; peek reads without counting; reset forgets', async (t) => {
    const { store } = make(t)
    t.equal(await store.peek('k'), null, 'an unknown key has no window')
    const before = Date.now()
    const first = await store.hit('k', 60_000)
    t.equal(first.count, 1)
    t.ok(first.resetAt >= before + 59_000 && first.resetAt <= Date.now() + 60_000, 'the window ends windowMs after the first hit')
    t.equal((await store.hit('k', 60_000)).count, 2)
    t.equal((await store.hit('k', 60_000)).count, 3)
    const peeked = await store.peek('k')
    t.equal(peeked?.count, 3, 'peek sees the count')
    t.equal((await store.peek('k'))?.count, 3, 'and does not count')
    t.ok(Math.abs((peeked?.resetAt ?? 0) - first.resetAt) < 1000, 'same window')
    t.equal((await store.hit('other', 60_000)).count, 1, 'keys are independent')
    await store.reset('k')
    t.equal(await store.peek('k'), null)
    t.equal((await store.hit('k', 60_000)).count, 1, 'a fresh window after reset')
    t.equal((await store.peek('other'))?.count, 1, 'reset touches one key')
    await store.reset('never-seen')
  })

  t.test('a window ends: the next hit starts a new one', async (t) => {
    const { store } = make(t)
    t.equal((await store.hit('short', 150)).count, 1)
    t.equal((await store.hit('short', 150)).count, 2)
    const deadline = Date.now() + 10_000
    while (await store.peek('short') !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
    t.equal(await store.peek('short'), null, 'the window is gone after windowMs')
    t.equal((await store.hit('short', 150)).count, 1, 'counting starts again')
  })

  t.test('parallel hits each get their own count: a budget of max lets exactly max through', async (t) => {
    const { store, again } = make(t)
    const stores = again === undefined ? [store] : [store, again]
    const counts = await Promise.all(Array.from({ length: 60 }, async (_v, i) => (await (stores[i % stores.length] as LimitStore).hit('burst', 60_000)).count))
    t.same([...counts].sort((a, b) => a - b), Array.from({ length: 60 }, (_v, i) => i + 1), 'every count from 1 to 60 exactly once')
    const max = 10
    t.equal(counts.filter((c) => c <= max).length, max, 'exactly max of them under the budget')
  })

  if (make(t).again !== undefined) {
    t.test('two clients of the shared store count together', async (t) => {
      const { store, again } = make(t)
      const other = again as LimitStore
      await store.hit('shared', 60_000)
      await other.hit('shared', 60_000)
      t.equal((await store.hit('shared', 60_000)).count, 3)
      t.equal((await other.peek('shared'))?.count, 3)
      await other.reset('shared')
      t.equal(await store.peek('shared'), null)
    })
  }
}
