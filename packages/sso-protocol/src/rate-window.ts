/**
 * Counts events per key in fixed windows, in this process's memory (bounded: past
 * `maxKeys` keys the oldest windows are dropped first). Both plugins throttle with it.
 */
export class FixedWindowCounter {
  readonly #hits = new Map<string, { start: number, count: number }>()
  constructor (readonly max: number, readonly window: number, readonly maxKeys = 100_000) {}

  #slot (key: string, now: number): { start: number, count: number } {
    let slot = this.#hits.get(key)
    if (slot === undefined || now - slot.start >= this.window) {
      this.#hits.delete(key)
      // A Map iterates in insertion order and a new window is always inserted last.
      for (const [old, v] of this.#hits) {
        if (this.#hits.size < this.maxKeys && now - v.start < this.window) break
        this.#hits.delete(old)
      }
      slot = { start: now, count: 0 }
      this.#hits.set(key, slot)
    }
    return slot
  }

  /** Ms until `key` may be counted again, or 0 when it is under its budget now. Counts nothing. */
  blockedFor (key: string, now: number): number {
    const slot = this.#hits.get(key)
    if (slot === undefined || now - slot.start >= this.window) return 0
    return slot.count >= this.max ? slot.start + this.window - now : 0
  }

  /** Counts one event for `key`. */
  add (key: string, now: number): void {
    this.#slot(key, now).count++
  }

  /** Counts one event and returns the ms to wait if it went over the budget (0 when allowed). */
  take (key: string, now: number): number {
    const slot = this.#slot(key, now)
    slot.count++
    return slot.count > this.max ? slot.start + this.window - now : 0
  }

  /** Forgets `key` (e.g. a successful sign-in clears its failures). */
  clear (key: string): void {
    this.#hits.delete(key)
  }
}
