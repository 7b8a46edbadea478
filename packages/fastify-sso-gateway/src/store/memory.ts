import type { Session } from 'fastify'
import type { SessionIndex } from 'fastify-sso-protocol'
import { errors } from '../errors.js'
import type {
  AuditRecord, AuditStore, BrowserSessionStore, DeliveryStatus, EndedSessions, GatewayStore, GroupStore, NewOutboxEvent, OutboxEvent, OutboxStore,
  RequestTokenRecord, RequestTokenStore, ServiceRecord, ServiceStore, SsoSessionService, SsoSessionStore, UserRecord, UserStore
} from './store.js'

/** How long what ended is remembered at least, in ms (as the SQLite store). */
const ENDED_MIN_MS = 3_600_000

let warned = false

interface StoredEvent extends OutboxEvent {
  /** 0 when not leased. */
  leaseUntil: number
  failingSince: number | null
}

interface StoredSession {
  data: string
  expiresAt: number
  user: string | null
  sso: string | null
}

const copy = <T>(value: T): T => structuredClone(value)
/** Binary order of two strings, as SQLite's ORDER BY. */
const order = (a: string, b: string): number => Number(a > b) - Number(a < b)

/**
 * A gateway store in this process's memory, for development and tests: nothing survives a
 * restart and nothing is shared between processes. It passes the same conformance suite as
 * the SQLite store. Used with `NODE_ENV=production` it warns, once per process.
 *
 * Each method runs without awaiting anything, so it is atomic in a single process; a change
 * computes everything it will write (its events included) before writing any of it.
 */
export class MemoryGatewayStore implements GatewayStore {
  readonly #users = new Map<string, UserRecord>()
  readonly #services = new Map<string, ServiceRecord>()
  /** Who signed in to which service: `${serviceId} ${userId}` → the username the service last saw. */
  readonly #logins = new Map<string, { serviceId: string, userId: string, username: string }>()
  readonly #tokens = new Map<string, RequestTokenRecord>()
  readonly #reach = new Map<string, Map<string, SsoSessionService>>()
  readonly #groups = new Map<string, Set<string>>()
  readonly #sessions = new Map<string, StoredSession>()
  readonly #endedSids = new Map<string, number>()
  readonly #endedSso = new Map<string, number>()
  readonly #outbox = new Map<string, StoredEvent>()
  readonly #audit: AuditRecord[] = []
  #auditSeq = 0
  #seq = 0

  readonly users: UserStore
  readonly groups: GroupStore
  readonly services: ServiceStore
  readonly tokens: RequestTokenStore
  readonly ssoSessions: SsoSessionStore
  readonly sessions: BrowserSessionStore
  readonly outbox: OutboxStore
  readonly audit: AuditStore

  constructor () {
    if (process.env.NODE_ENV === 'production' && !warned) {
      warned = true
      process.emitWarning('fastify-sso-gateway: the memory store keeps users, sessions and events in this process only; ' +
        'they are lost at restart. Use the SQLite store (the default) or your own in production.', { code: 'FST_SSO_GATEWAY_MEMORY_STORE' })
    }
    this.users = this.#userStore()
    this.groups = this.#groupStore()
    this.services = this.#serviceStore()
    this.tokens = this.#tokenStore()
    this.ssoSessions = { services: async (sso) => this.#reachOf(sso) }
    this.sessions = this.#sessionStore()
    this.outbox = this.#outboxStore()
    this.audit = this.#auditStore()
  }

  async close (): Promise<void> {}

  #auditStore (): AuditStore {
    return {
      append: async (records) => {
        for (const r of records) this.#audit.push({ ...copy(r), id: ++this.#auditSeq })
      },
      list: async (f) => this.#audit.filter((r) => (f.user === undefined || r.user === f.user) &&
        (f.service === undefined || r.service === f.service) && (f.kind === undefined || r.kind === f.kind) &&
        (f.since === undefined || r.at >= f.since) && (f.until === undefined || r.at < f.until) &&
        (f.beforeId === undefined || r.id < f.beforeId)).reverse().slice(0, f.limit).map(copy),
      prune: async (before) => {
        const old = this.#audit.filter((r) => r.at < before).length
        this.#audit.splice(0, this.#audit.length, ...this.#audit.filter((r) => r.at >= before))
        return old
      }
    }
  }

  #reachOf (sso: string): SsoSessionService[] {
    return [...(this.#reach.get(sso)?.values() ?? [])].sort((a, b) => a.lastAt - b.lastAt).map(copy)
  }

  /** Checks that events can be queued (ids unique), before anything of the change is written. */
  #checkEvents (events: NewOutboxEvent[]): NewOutboxEvent[] {
    const ids = new Set<string>()
    for (const e of events) {
      if (ids.has(e.id) || this.#outbox.has(e.id)) throw new Error(`outbox: event ${e.id} is already queued`)
      ids.add(e.id)
    }
    return events
  }

  #queue (events: NewOutboxEvent[], now: number): void {
    for (const e of events) {
      this.#outbox.set(e.id, {
        ...e, seq: ++this.#seq, status: 'pending', attempts: 0, nextAttemptAt: now, lastError: null, createdAt: now, leaseUntil: 0, failingSince: null
      })
    }
  }

  /** The SSO sessions a user has: in a browser session, or reached by a sign-in. */
  #ssoSessionsOf (userId: string): Set<string> {
    const ids = new Set<string>()
    for (const s of this.#sessions.values()) if (s.user === userId && s.sso !== null) ids.add(s.sso)
    for (const [sso, reach] of this.#reach) if ([...reach.values()].some((r) => r.userId === userId)) ids.add(sso)
    return ids
  }

  #ownerOf (sso: string): string {
    for (const s of this.#sessions.values()) if (s.sso === sso && s.user !== null) return s.user
    return [...(this.#reach.get(sso)?.values() ?? [])][0]?.userId ?? ''
  }

  /** What ending these SSO sessions (or, with `user`, every session of that user) will end. Writes nothing. */
  #planEnd (ssoIds: Iterable<string>, userId: string, allOfUser: boolean): { ended: EndedSessions, sids: string[], sso: string[] } {
    const sso = [...ssoIds]
    const ssoSet = new Set(sso)
    const sids = [...this.#sessions].filter(([, s]) => (s.sso !== null && ssoSet.has(s.sso)) || (allOfUser && s.user === userId)).map(([sid]) => sid)
    const ended: EndedSessions = {
      browserSessions: sids.length,
      ssoSessions: sso.map((id) => ({ id, userId: allOfUser ? userId : this.#ownerOf(id), services: this.#reachOf(id).map((r) => r.serviceId) }))
    }
    return { ended, sids, sso }
  }

  #applyEnd (plan: { sids: string[], sso: string[] }, userId: string | null, now: number): void {
    const floor = now + ENDED_MIN_MS
    for (const id of plan.sso) {
      let until = floor
      for (const s of this.#sessions.values()) if (s.sso === id) until = Math.max(until, s.expiresAt)
      this.#endedSso.set(id, Math.max(until, this.#endedSso.get(id) ?? 0))
      this.#reach.delete(id)
    }
    for (const sid of plan.sids) {
      this.#endedSids.set(sid, Math.max(floor, (this.#sessions.get(sid) as StoredSession).expiresAt))
      this.#sessions.delete(sid)
    }
    const sso = new Set(plan.sso)
    for (const t of this.#tokens.values()) {
      if (t.status === 'authenticated' && ((t.ssoSession !== null && sso.has(t.ssoSession)) || (userId !== null && t.userId === userId))) t.status = 'used'
    }
    // (The reach of every SSO session of the user went with `plan.sso`, which includes those known by reach only.)
  }

  #endUser (userId: string, now: number, events: (ended: EndedSessions) => NewOutboxEvent[], except?: string, before?: () => void): EndedSessions {
    const all = except === undefined
    const plan = this.#planEnd([...this.#ssoSessionsOf(userId)].filter((id) => id !== except), userId, all)
    const queued = this.#checkEvents(events(plan.ended))
    before?.()
    this.#applyEnd(plan, all ? userId : null, now)
    this.#queue(queued, now)
    return plan.ended
  }

  #userStore (): UserStore {
    const byName = (username: string): UserRecord | undefined => [...this.#users.values()].find((u) => u.username === username)
    return {
      create: async (user) => {
        if (byName(user.username) !== undefined || this.#users.has(user.id)) throw new errors.USER_EXISTS(user.username)
        const now = Date.now()
        const record = { ...copy(user), createdAt: now, updatedAt: now }
        this.#users.set(user.id, record)
        return copy(record)
      },
      byId: async (id) => copy(this.#users.get(id) ?? null),
      byUsername: async (username) => copy(byName(username) ?? null),
      list: async (after, limit, prefix = '') => [...this.#users.values()]
        .filter((u) => u.username > after && u.username.startsWith(prefix))
        .sort((a, b) => order(a.username, b.username)).slice(0, limit).map(copy),
      update: async (id, patch, events, end) => {
        const old = this.#users.get(id)
        if (old === undefined) return null
        const now = Date.now()
        const user: UserRecord = { ...copy(old), ...copy(patch), updatedAt: now }
        const holder = byName(user.username)
        if (holder !== undefined && holder.id !== id) throw new errors.USER_EXISTS(user.username)
        const write = (): void => {
          this.#users.set(id, user)
          if (patch.username !== undefined) for (const l of this.#logins.values()) if (l.userId === id) l.username = user.username
        }
        if (end === undefined) {
          const queued = this.#checkEvents(events?.(copy(user), { browserSessions: 0, ssoSessions: [] }) ?? [])
          write()
          this.#queue(queued, now)
        } else {
          this.#endUser(id, now, (ended) => events?.(copy(user), ended) ?? [], end.exceptSsoSession, write)
        }
        return copy(user)
      },
      delete: async (id, events) => {
        if (!this.#users.has(id)) return null
        return this.#endUser(id, Date.now(), events, undefined, () => {
          this.#users.delete(id)
          for (const members of this.#groups.values()) members.delete(id)
        })
      }
    }
  }

  #groupStore (): GroupStore {
    const ofUser = (userId: string): string[] => [...this.#groups].filter(([, m]) => m.has(userId)).map(([g]) => g).sort()
    return {
      create: async (name) => { if (!this.#groups.has(name)) this.#groups.set(name, new Set()) },
      delete: async (name) => this.#groups.delete(name),
      list: async () => [...this.#groups.keys()].sort(),
      setMember: async (group, userId, member, events) => {
        const members = this.#groups.get(group)
        if (members === undefined) throw new errors.INVALID_GROUP(JSON.stringify(group))
        const after = new Set(ofUser(userId))
        if (member && this.#users.has(userId)) after.add(group)
        else after.delete(group)
        const groups = [...after].sort()
        const queued = this.#checkEvents(events(groups))
        if (member && this.#users.has(userId)) members.add(userId)
        else members.delete(userId)
        this.#queue(queued, Date.now())
        return groups
      },
      ofUser: async (userId) => ofUser(userId),
      members: async (group) => [...(this.#groups.get(group) ?? [])].map((id) => copy(this.#users.get(id) as UserRecord))
        .sort((a, b) => order(a.username, b.username))
    }
  }

  #serviceStore (): ServiceStore {
    const find = (pred: (s: ServiceRecord) => boolean): ServiceRecord | null => copy([...this.#services.values()].find(pred) ?? null)
    return {
      create: async (service) => {
        if ([...this.#services.values()].some((s) => s.name === service.name || s.tokenHash === service.tokenHash || s.id === service.id)) {
          throw new errors.SERVICE_EXISTS(service.name)
        }
        const record: ServiceRecord = { ...copy(service), previous: copy(service.previous ?? null), createdAt: Date.now() }
        this.#services.set(service.id, record)
        return copy(record)
      },
      byId: async (id) => copy(this.#services.get(id) ?? null),
      byName: async (name) => find((s) => s.name === name),
      byTokenHash: async (hash) => find((s) => s.tokenHash === hash) ?? find((s) => s.previous?.tokenHash === hash),
      list: async () => [...this.#services.values()].map(copy),
      update: async (id, patch, events) => {
        const old = this.#services.get(id)
        if (old === undefined) return null
        const service = { ...copy(old), ...copy(patch) }
        const queued = this.#checkEvents(events?.(copy(service)) ?? [])
        this.#services.set(id, service)
        this.#queue(queued, Date.now())
        return copy(service)
      },
      hasUser: async (serviceId, userId) => this.#logins.has(`${serviceId} ${userId}`),
      users: async (serviceId, after, limit) => [...this.#logins.values()]
        .filter((l) => l.serviceId === serviceId && l.userId > after)
        .sort((a, b) => order(a.userId, b.userId))
        .slice(0, limit)
        .map((l) => ({ userId: l.userId, lastUsername: l.username, user: copy(this.#users.get(l.userId) ?? null) }))
    }
  }

  #tokenStore (): RequestTokenStore {
    const live = (hash: string, now: number): RequestTokenRecord | undefined => {
      const t = this.#tokens.get(hash)
      return t !== undefined && t.expiresAt > now ? t : undefined
    }
    return {
      create: async (t) => {
        if (this.#tokens.has(t.hash)) throw new Error('request token already stored')
        this.#tokens.set(t.hash, { ...t, status: 'pending', userId: null, ssoSession: null, sessionEndsAt: null, authAt: null, codeHash: null })
      },
      get: async (hash, now) => copy(live(hash, now) ?? null),
      authenticate: async (hash, by, now, events) => {
        const t = live(hash, now)
        if (t === undefined || t.status !== 'pending' || this.#endedSso.has(by.ssoSession)) return false
        const queued = this.#checkEvents(events?.(t.serviceId) ?? [])
        Object.assign(t, {
          status: 'authenticated', userId: by.userId, ssoSession: by.ssoSession, sessionEndsAt: by.sessionEndsAt, authAt: by.authAt, codeHash: by.codeHash, expiresAt: by.expiresAt
        })
        const username = this.#users.get(by.userId)?.username
        if (username !== undefined) this.#logins.set(`${t.serviceId} ${by.userId}`, { serviceId: t.serviceId, userId: by.userId, username })
        const reach = this.#reach.get(by.ssoSession) ?? new Map<string, SsoSessionService>()
        reach.set(t.serviceId, { serviceId: t.serviceId, userId: by.userId, lastAt: now })
        this.#reach.set(by.ssoSession, reach)
        this.#queue(queued, now)
        return true
      },
      decline: async (hash, now) => {
        const t = live(hash, now)
        if (t?.status !== 'pending') return false
        t.status = 'declined'
        return true
      },
      spendDeclined: async (hash, serviceId, now) => {
        const t = live(hash, now)
        if (t?.status !== 'declined' || t.serviceId !== serviceId) return false
        t.status = 'used'
        return true
      },
      consume: async (hash, serviceId, now, codeHash) => {
        const t = live(hash, now)
        if (t?.status !== 'authenticated' || t.serviceId !== serviceId || (t.codeHash !== null && t.codeHash !== codeHash)) return null
        t.status = 'used'
        return copy(t)
      },
      burn: async (hash) => {
        const t = this.#tokens.get(hash)
        if (t !== undefined) t.status = 'used'
      },
      prune: async (now) => {
        let n = 0
        for (const [hash, t] of this.#tokens) if (t.expiresAt <= now && this.#tokens.delete(hash)) n++
        return n
      }
    }
  }

  #sessionStore (): BrowserSessionStore {
    return {
      get: async (sid, now) => {
        const s = this.#sessions.get(sid)
        return s !== undefined && s.expiresAt > now ? JSON.parse(s.data) as Session : null
      },
      set: async (sid: string, session: Session, index: SessionIndex) => {
        if (this.#endedSids.has(sid) || (index.ssoSession !== null && this.#endedSso.has(index.ssoSession))) return
        this.#sessions.set(sid, { data: JSON.stringify(session), expiresAt: index.expiresAt, user: index.user, sso: index.ssoSession })
      },
      destroy: async (sid) => {
        const s = this.#sessions.get(sid)
        if (s === undefined) return
        this.#endedSids.set(sid, Math.max(s.expiresAt, Date.now() + ENDED_MIN_MS))
        this.#sessions.delete(sid)
      },
      destroyByUser: async (userId, events, except) => this.#endUser(userId, Date.now(), events, except),
      destroyBySsoSession: async (sso, events) => {
        const now = Date.now()
        const plan = this.#planEnd([sso], '', false)
        const queued = this.#checkEvents(events(plan.ended))
        this.#applyEnd(plan, null, now)
        this.#queue(queued, now)
        return plan.ended
      },
      listByUser: async (userId, now) => [...this.#sessions.values()]
        .filter((s) => s.user === userId && s.expiresAt > now).map((s) => JSON.parse(s.data) as Session),
      touch: async (sso, now, lifetime) => {
        let n = 0
        for (const s of this.#sessions.values()) {
          if (s.sso !== sso || s.expiresAt <= now) continue
          const data = JSON.parse(s.data) as Session
          data.seenAt = now
          s.data = JSON.stringify(data)
          s.expiresAt = Math.min(now + lifetime.idleTimeout, typeof data.createdAt === 'number' ? data.createdAt + lifetime.absoluteTimeout : now + lifetime.idleTimeout)
          n++
        }
        return n
      },
      takeExpired: async (now, limit) => {
        for (const [k, until] of this.#endedSids) if (until <= now) this.#endedSids.delete(k)
        for (const [k, until] of this.#endedSso) if (until <= now) this.#endedSso.delete(k)
        const expired = [...this.#sessions].filter(([, s]) => s.expiresAt <= now).sort(([, a], [, b]) => a.expiresAt - b.expiresAt).slice(0, limit)
        for (const [sid] of expired) this.#sessions.delete(sid)
        return expired.map(([, s]) => ({ user: s.user, ssoSession: s.sso }))
      }
    }
  }

  #outboxStore (): OutboxStore {
    const pending = (): StoredEvent[] => [...this.#outbox.values()].filter((e) => e.status === 'pending').sort((a, b) => a.seq - b.seq)
    const publicEvent = ({ leaseUntil: _l, failingSince: _f, ...e }: StoredEvent): OutboxEvent => copy(e)
    const claimable = (e: StoredEvent, now: number, all: StoredEvent[]): boolean =>
      e.nextAttemptAt <= now && e.leaseUntil <= now &&
      !all.some((o) => o.serviceId === e.serviceId && o.userKey === e.userKey && o.seq < e.seq)
    return {
      enqueue: async (events) => { this.#queue(this.#checkEvents(events), Date.now()) },
      claim: async (now, leaseMs, limit, onlyIds) => {
        const all = pending()
        const only = onlyIds === undefined ? undefined : new Set(onlyIds)
        const claimed = all.filter((e) => (only === undefined || only.has(e.id)) && claimable(e, now, all)).slice(0, limit)
        for (const e of claimed) e.leaseUntil = now + leaseMs
        return claimed.map(publicEvent)
      },
      expedite: async (serviceId, userKey, now) => {
        const mine = pending().filter((e) => e.serviceId === serviceId && e.userKey === userKey)
        for (const e of mine) if (e.nextAttemptAt > now && e.leaseUntil <= now) e.nextAttemptAt = now
        return mine.map((e) => e.id)
      },
      expediteService: async (serviceId, now) => {
        const waiting = pending().filter((e) => e.serviceId === serviceId && e.nextAttemptAt > now && e.leaseUntil <= now)
        for (const e of waiting) e.nextAttemptAt = now
        return waiting.length
      },
      complete: async (id) => {
        const e = this.#outbox.get(id)
        if (e !== undefined) Object.assign(e, { status: 'delivered', leaseUntil: 0, attempts: e.attempts + 1, lastError: null, failingSince: null })
      },
      fail: async (id, error, next, now) => {
        const e = this.#outbox.get(id)
        if (e === undefined) return
        Object.assign(e, {
          status: next === null ? 'dead' : 'pending', nextAttemptAt: next ?? e.nextAttemptAt, leaseUntil: 0, attempts: e.attempts + 1, lastError: error, failingSince: e.failingSince ?? now
        })
      },
      release: async (id) => {
        const e = this.#outbox.get(id)
        if (e !== undefined) e.leaseUntil = 0
      },
      list: async (status, limit) => [...this.#outbox.values()].filter((e) => e.status === status).sort((a, b) => a.seq - b.seq).slice(0, limit).map(publicEvent),
      prune: async (before) => {
        let n = 0
        for (const [id, e] of this.#outbox) if (e.status === 'delivered' && e.createdAt < before && this.#outbox.delete(id)) n++
        return n
      },
      replay: async (id, now) => {
        const e = this.#outbox.get(id)
        if (e?.status !== 'dead') return false
        Object.assign(e, { status: 'pending', nextAttemptAt: now, leaseUntil: 0 })
        return true
      },
      status: async () => {
        const by = new Map<string, DeliveryStatus>()
        for (const e of this.#outbox.values()) {
          if (e.status === 'delivered') continue
          const s = by.get(e.serviceId) ?? { serviceId: e.serviceId, pending: 0, dead: 0, failingSince: null }
          if (e.status === 'pending') {
            s.pending++
            if (e.failingSince !== null) s.failingSince = Math.min(s.failingSince ?? Infinity, e.failingSince)
          } else s.dead++
          by.set(e.serviceId, s)
        }
        return [...by.values()].sort((a, b) => order(a.serviceId, b.serviceId))
      }
    }
  }
}
