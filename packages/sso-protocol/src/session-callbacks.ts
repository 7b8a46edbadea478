/** What a session is indexed by, so logging a user out never scans. */
export interface SessionIndex {
  /** The user the session belongs to, or null for an anonymous session. */
  user: string | null
  /** The gateway SSO session the session was born from, if any. */
  ssoSession: string | null
  /** When the session ends at the latest, in ms since the epoch. */
  expiresAt: number
}

/** The three calls @fastify/session makes, as promises. */
export interface AsyncSessionCalls<S> {
  get: (sid: string) => Promise<S | null>
  set: (sid: string, session: S) => Promise<void>
  destroy: (sid: string) => Promise<void>
}

/** A session store in @fastify/session's callback shape. */
export interface CallbackSessionStore<S> {
  get: (sid: string, callback: (err: unknown, session?: S | null) => void) => void
  set: (sid: string, session: S, callback: (err?: unknown) => void) => void
  destroy: (sid: string, callback: (err?: unknown) => void) => void
}

/**
 * Gives an async session store the callback shape @fastify/session calls (its `SessionStore`
 * type, with `S` its `Session`), so both plugins register theirs without a cast.
 */
export function callbackSessionStore<S> (calls: AsyncSessionCalls<S>): CallbackSessionStore<S> {
  return {
    get (sid, callback) {
      calls.get(sid).then((session) => { callback(null, session) }, callback)
    },
    set (sid, session, callback) {
      calls.set(sid, session).then(() => { callback() }, callback)
    },
    destroy (sid, callback) {
      calls.destroy(sid).then(() => { callback() }, callback)
    }
  }
}
