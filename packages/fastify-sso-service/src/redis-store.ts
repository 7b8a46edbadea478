import type { Session } from 'fastify'
import { withTimeout, type RedisClient, type SessionIndex, type SsoAccount } from 'fastify-sso-protocol'
import { DatabaseUnavailableError } from './errors.js'
import { ENDED_MIN_MS, JSON_PATH, type ServiceSessionStore } from './session-store.js'
import { EVENT_ID_RETENTION, type ServiceState } from './session.js'

/** Options of `new RedisServiceStore(...)`. */
export interface RedisServiceStoreOptions {
  /** An ioredis client (or anything with its `eval`). The app owns it: the store never closes it. */
  redis: RedisClient
  /** Prefix of every key the store writes. @default 'sso:service:' */
  prefix?: string
  /** A Redis call slower than this fails (503), in ms. @default 2000 */
  timeout?: number
}

/*
 * Keys, under the prefix:
 *   s:<sid>        hash { d: session JSON, u: user, o: SSO session, x: expires at (ms), i: issuedAt or '' }, TTL = its expiry
 *   u:<user>       set of sids (the user index),         TTL = its longest-lived session's
 *   o:<sso>        set of sids (the SSO-session index),  TTL = its longest-lived session's
 *   e:<sid>        an ended session, never written back, TTL = max(its expiry, now + 1 h)
 *   ev:<id>        a processed event id,                 TTL = EVENT_ID_RETENTION
 *   av:<username>  webhook timestamp of the last update_account applied, TTL = EVENT_ID_RETENTION
 *   id:<userId>    the username last seen for a gateway user id
 *   ac:<username>  the account as the gateway's events last described it (JSON)
 * Every write that touches two keys is one Lua script (atomic). A single Redis (or a primary),
 * not Redis Cluster: the scripts build their keys from the prefix.
 */

// Extends an index set's TTL to a session's expiry (never shortens it).
const INDEX = `local function index (ik, sid, exp, now)
  redis.call('SADD', ik, sid)
  local t = redis.call('PTTL', ik)
  if t < 0 or now + t < tonumber(exp) then redis.call('PEXPIREAT', ik, exp) end
end
`

const SET = INDEX + `local p, sid, data, user, sso, exp, iat, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
if redis.call('EXISTS', p .. 'e:' .. sid) == 1 then return 0 end
local k = p .. 's:' .. sid
local old = redis.call('HMGET', k, 'u', 'o')
if old[1] and old[1] ~= '' and old[1] ~= user then redis.call('SREM', p .. 'u:' .. old[1], sid) end
if old[2] and old[2] ~= '' and old[2] ~= sso then redis.call('SREM', p .. 'o:' .. old[2], sid) end
redis.call('DEL', k)
if tonumber(exp) <= now then
  if user ~= '' then redis.call('SREM', p .. 'u:' .. user, sid) end
  if sso ~= '' then redis.call('SREM', p .. 'o:' .. sso, sid) end
  return 0
end
redis.call('HSET', k, 'd', data, 'u', user, 'o', sso, 'x', exp, 'i', iat)
redis.call('PEXPIREAT', k, exp)
if user ~= '' then index(p .. 'u:' .. user, sid, exp, now) end
if sso ~= '' then index(p .. 'o:' .. sso, sid, exp, now) end
return 1`

const GET = `local h = redis.call('HMGET', KEYS[1], 'd', 'x')
if not h[1] or tonumber(h[2]) <= tonumber(ARGV[1]) then return false end
return h[1]`

// Ends one session (mode s), or every session of a user (u) or an SSO session (o); with
// `before`, only those issued at or before it (or without issuedAt). Ended ones are remembered.
const END = `local p, mode, v, before, floor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local sids
if mode == 's' then sids = {v} else sids = redis.call('SMEMBERS', p .. mode .. ':' .. v) end
local n = 0
for _, sid in ipairs(sids) do
  local k = p .. 's:' .. sid
  local h = redis.call('HMGET', k, 'u', 'o', 'x', 'i')
  if not h[3] then
    if mode ~= 's' then redis.call('SREM', p .. mode .. ':' .. v, sid) end
  elseif before == '' or h[4] == '' or tonumber(h[4]) <= tonumber(before) then
    if h[1] ~= '' then redis.call('SREM', p .. 'u:' .. h[1], sid) end
    if h[2] ~= '' then redis.call('SREM', p .. 'o:' .. h[2], sid) end
    redis.call('DEL', k)
    local keep = floor
    if tonumber(h[3]) > tonumber(floor) then keep = h[3] end
    redis.call('SET', p .. 'e:' .. sid, '1', 'PXAT', keep)
    n = n + 1
  end
end
return n`

// The live sessions of a user as [sid, data, ...]; ids whose session is gone leave the index.
const LIST = `local p, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', p .. 'u:' .. user)) do
  local h = redis.call('HMGET', p .. 's:' .. sid, 'd', 'x')
  if not h[1] then redis.call('SREM', p .. 'u:' .. user, sid)
  elseif tonumber(h[2]) > now then out[#out + 1] = sid out[#out + 1] = h[1] end
end
return out`

// Moves one session to another user if its data is still what was read (compare and set).
const MOVE = INDEX + `local p, sid, expected, data, olduser, user, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local k = p .. 's:' .. sid
local h = redis.call('HMGET', k, 'd', 'x')
if h[1] ~= expected then return 0 end
redis.call('HSET', k, 'd', data, 'u', user)
redis.call('SREM', p .. 'u:' .. olduser, sid)
index(p .. 'u:' .. user, sid, h[2], now)
return 1`

const RECORD = `local p, id, ts, keep, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if id ~= '' then redis.call('SET', p .. 'ev:' .. id, now, 'PX', keep) end
if ts ~= '' then
  for i = 6, #ARGV do
    local k = p .. 'av:' .. ARGV[i]
    local cur = redis.call('GET', k)
    if not cur or tonumber(cur) < tonumber(ts) then redis.call('SET', k, ts, 'PX', keep) end
  end
end
return 1`

const RENAME_ACCOUNT = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1`

const GET_KEY = "return redis.call('GET', KEYS[1])"
const EXISTS_KEY = "return redis.call('EXISTS', KEYS[1])"
const SET_KEY = "return redis.call('SET', KEYS[1], ARGV[1])"
const DEL_KEY = "return redis.call('DEL', KEYS[1])"

/** Sets the value at a checked JSON path (`$.a.b`) as SQLite's json_set: missing objects on the way are created, other values stop it. */
function setPath (data: Record<string, unknown>, path: string, value: string): void {
  const keys = path.slice(2).split('.')
  let node = data
  for (const key of keys.slice(0, -1)) {
    if (node[key] === undefined) node[key] = {}
    const next = node[key]
    if (typeof next !== 'object' || next === null || Array.isArray(next)) return
    node = next as Record<string, unknown>
  }
  node[keys[keys.length - 1] as string] = value
}

function getPath (data: Record<string, unknown>, path: string): unknown {
  let node: unknown = data
  for (const key of path.slice(2).split('.')) {
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

/**
 * Sessions, their user and SSO-session indexes, processed event ids and known accounts in
 * Redis, shared by every process of a service app: a `deauthenticate` received by one process
 * ends the sessions served by any of them, in one script over that user's index (the cost of
 * that user's sessions, whatever the number stored). Redis expires what has expired (`prune`
 * has nothing to do). A Redis call that fails or times out rejects with
 * `FST_SSO_SERVICE_DATABASE_UNAVAILABLE` (503).
 */
export class RedisServiceStore implements ServiceSessionStore, ServiceState {
  readonly #redis: RedisClient
  readonly #p: string
  readonly #timeout: number
  /** The session half, as `ServiceState` expects it. */
  readonly store: ServiceSessionStore = this

  constructor (options: RedisServiceStoreOptions) {
    this.#redis = options.redis
    this.#p = options.prefix ?? 'sso:service:'
    this.#timeout = options.timeout ?? 2000
  }

  async #eval (script: string, keys: string[], ...args: Array<string | number>): Promise<unknown> {
    try {
      return await withTimeout(this.#redis.eval(script, keys.length, ...keys.map((k) => this.#p + k), ...args), this.#timeout,
        `Redis did not answer within ${this.#timeout} ms`)
    } catch (err) {
      const error = new DatabaseUnavailableError()
      error.cause = err
      throw error
    }
  }

  async get (sid: string, now: number): Promise<Session | null> {
    const data = await this.#eval(GET, [`s:${sid}`], now) as string | null
    return data === null ? null : JSON.parse(data) as Session
  }

  async set (sid: string, session: Session, index: SessionIndex): Promise<void> {
    const issuedAt = (session as { issuedAt?: unknown }).issuedAt
    await this.#eval(SET, [], this.#p, sid, JSON.stringify(session), index.user ?? '', index.ssoSession ?? '', index.expiresAt,
      typeof issuedAt === 'number' ? issuedAt : '', Date.now())
  }

  async #end (mode: 's' | 'u' | 'o', value: string, issuedBefore?: number): Promise<number> {
    return await this.#eval(END, [], this.#p, mode, value, issuedBefore ?? '', Date.now() + ENDED_MIN_MS) as number
  }

  async destroy (sid: string): Promise<void> {
    await this.#end('s', sid)
  }

  async destroyByUser (user: string, issuedBefore?: number): Promise<number> {
    return await this.#end('u', user, issuedBefore)
  }

  async destroyBySsoSession (ssoSession: string, issuedBefore?: number): Promise<number> {
    return await this.#end('o', ssoSession, issuedBefore)
  }

  async rekeyUser (oldUser: string, newUser: string, dataPaths: readonly string[] = ['$.user'], only?: { path: string, value: string }): Promise<number> {
    if (dataPaths.length === 0 || ![...dataPaths, only?.path ?? '$.x'].every((p) => JSON_PATH.test(p))) {
      throw new TypeError(`invalid JSON paths: ${JSON.stringify(dataPaths)}`)
    }
    let moved = 0
    // Each session moves by compare-and-set: one that changed in between is read again (a few times).
    for (let round = 0; round < 5; round++) {
      const rows = await this.#eval(LIST, [], this.#p, oldUser, 0) as string[]
      let conflicts = 0
      for (let i = 0; i < rows.length; i += 2) {
        const sid = rows[i] as string
        const raw = rows[i + 1] as string
        const data = JSON.parse(raw) as Record<string, unknown>
        if (only !== undefined) {
          const recorded = getPath(data, only.path)
          if (recorded !== undefined && recorded !== null && recorded !== only.value) continue
        }
        for (const path of dataPaths) setPath(data, path, newUser)
        if (await this.#eval(MOVE, [], this.#p, sid, raw, JSON.stringify(data), oldUser, newUser, Date.now()) === 1) moved++
        else conflicts++
      }
      if (conflicts === 0) break
    }
    return moved
  }

  async listByUser (user: string, now: number): Promise<Session[]> {
    const rows = await this.#eval(LIST, [], this.#p, user, now) as string[]
    return rows.filter((_row, i) => i % 2 === 1).map((data) => JSON.parse(data) as Session)
  }

  /** Redis expires sessions, ended-session marks and event ids itself: nothing to do. */
  async prune (): Promise<number> {
    return 0
  }

  async isProcessed (id: string): Promise<boolean> {
    return await this.#eval(EXISTS_KEY, [`ev:${id}`]) === 1
  }

  async lastAccountTimestamp (username: string): Promise<number> {
    const ts = await this.#eval(GET_KEY, [`av:${username}`]) as string | null
    return ts === null ? -1 : Number(ts)
  }

  async recordEvent (id: string | null, usernames: readonly string[] = [], timestamp: number | null = null, now: number = Date.now()): Promise<void> {
    await this.#eval(RECORD, [], this.#p, id ?? '', timestamp ?? '', EVENT_ID_RETENTION, now, ...usernames)
  }

  async usernameOf (userId: string): Promise<string | null> {
    return await this.#eval(GET_KEY, [`id:${userId}`]) as string | null
  }

  async rememberUser (userId: string, username: string | null): Promise<void> {
    if (username === null) await this.#eval(DEL_KEY, [`id:${userId}`])
    else await this.#eval(SET_KEY, [`id:${userId}`], username)
  }

  async lastAccount (username: string): Promise<SsoAccount | null> {
    const raw = await this.#eval(GET_KEY, [`ac:${username}`]) as string | null
    return raw === null ? null : JSON.parse(raw) as SsoAccount
  }

  async knownAccount (username: string): Promise<SsoAccount> {
    return await this.lastAccount(username) ?? { username, is_active: true, is_staff: false, is_superuser: false }
  }

  async renameAccount (oldUsername: string, username: string): Promise<void> {
    const read = async (): Promise<string | null> => await this.#eval(GET_KEY, [`ac:${oldUsername}`]) as string | null
    let raw = await read()
    // Changed in between: read again (five tries; past them the account keeps changing and stays put).
    for (let round = 0; raw !== null && round < 5; round++) {
      const moved = JSON.stringify({ ...JSON.parse(raw) as SsoAccount, username })
      if (await this.#eval(RENAME_ACCOUNT, [`ac:${oldUsername}`, `ac:${username}`], raw, moved) === 1) return
      raw = await read()
    }
  }

  async rememberAccount (username: string, account: SsoAccount | null): Promise<void> {
    if (account === null) await this.#eval(DEL_KEY, [`ac:${username}`])
    else await this.#eval(SET_KEY, [`ac:${username}`], JSON.stringify(account))
  }

  /** The Redis client belongs to the app: nothing to close. */
  close (): void {}
}
