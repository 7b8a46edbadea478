import type { SessionIndex } from './session-callbacks.js'

/** Idle and absolute lifetimes of a session, in milliseconds. */
export interface SessionLifetime {
  /** A session unused for this long ends. */
  idleTimeout: number
  /** A session ends this long after sign-in, however busy. */
  absoluteTimeout: number
}

/**
 * The timing fields both plugins keep in a session. `createdAt` is set at
 * sign-in, `seenAt` at most once a minute while the session is used, and
 * `endsAt` (optional) caps the session at an earlier moment, e.g. a service
 * session never outlives the gateway session it came from.
 */
export interface TimedSession {
  createdAt?: number
  seenAt?: number
  endsAt?: number
}

/**
 * How stale `seenAt` may get before it is written again, in ms: a minute, or a tenth
 * of the idle timeout when that is shorter, so use always keeps a session alive.
 */
export const SEEN_AT_RESOLUTION = 60_000

/** The touch resolution for a lifetime: `min(SEEN_AT_RESOLUTION, idleTimeout / 10)`. */
export function seenAtResolution (lifetime: SessionLifetime): number {
  return Math.min(SEEN_AT_RESOLUTION, Math.floor(lifetime.idleTimeout / 10))
}

/** When a session ends at the latest, in ms since the epoch. */
export function sessionExpiresAt (session: TimedSession, lifetime: SessionLifetime, now: number): number {
  const seen = session.seenAt ?? session.createdAt ?? now
  let end = seen + lifetime.idleTimeout
  if (session.createdAt !== undefined) end = Math.min(end, session.createdAt + lifetime.absoluteTimeout)
  if (session.endsAt !== undefined) end = Math.min(end, session.endsAt)
  return end
}

/**
 * Checks a session against its lifetimes: `'expired'` if it must end now,
 * `'touch'` if `seenAt` should be refreshed (and the session saved), `'fresh'` otherwise.
 */
export function checkSessionLifetime (session: TimedSession, lifetime: SessionLifetime, now: number): 'expired' | 'touch' | 'fresh' {
  if (sessionExpiresAt(session, lifetime, now) <= now) return 'expired'
  if (session.seenAt === undefined || now - session.seenAt >= seenAtResolution(lifetime)) return 'touch'
  return 'fresh'
}

/** A session as the index reads it: the user in `user`, the SSO session in `sso`, its times. */
export interface IndexedSession extends TimedSession {
  user?: unknown
  sso?: unknown
}

/**
 * The index function both plugins' session stores use: sessions keep the user in `user`,
 * the SSO session in `sso`, and their times as above.
 */
export function sessionIndexer (lifetime: SessionLifetime, now: () => number = Date.now) {
  return (session: IndexedSession): SessionIndex => {
    const user = typeof session.user === 'string' ? session.user : null
    const sso = typeof session.sso === 'string' ? session.sso : null
    return { user, ssoSession: sso, expiresAt: sessionExpiresAt(session, lifetime, now()) }
  }
}
