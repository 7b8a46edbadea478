import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { mergeFields } from 'fastify-sso-protocol'
import type { SsoAccount } from 'fastify-sso-protocol'
import { AccountHookFailedError } from './errors.js'
import type { GatewayClient } from './gateway-client.js'
import { isRefusal, runPipeline } from './pipeline.js'
import type { PipelineContext, PipelineSource, PipelineStep } from './pipeline.js'
import type { ServiceState } from './session.js'
import type { ResolvedOptions, ResyncOptions, ResyncSummary } from './types.js'

/** JSON fields of a stored session that hold the username (see `ServiceSessionFields`). */
const SESSION_USERNAME_PATHS = ['$.user', '$.account.username'] as const

/** Defaults and bounds of `resync()`. */
export const RESYNC_LIMITS = { pageSize: 100, maxPageSize: 1000, maxPages: 1000 } as const

/** Where a piece of account work comes from, for hooks and logs. */
interface Origin {
  request: FastifyRequest | null
  log: FastifyBaseLogger
}

/** What happened to one account. */
export type AccountOutcome = 'updated' | 'disabled' | 'refused'

function positiveInt (name: string, value: unknown, def: number, max: number): number {
  if (value === undefined) return def
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new TypeError(`fastify-sso-service: resync ${name} must be an integer from 1 to ${max}, got ${String(value)}`)
  }
  return value
}

/**
 * Applies account state to the local sessions and the app's accounts: the
 * pipeline, renames, deletions and resync. Work for one user runs one at a
 * time (events, resync), so order checks and idempotency hold within a process.
 */
export class AccountSync {
  readonly #options: ResolvedOptions
  readonly #db: ServiceState
  readonly #client: GatewayClient
  readonly #steps: readonly PipelineStep[]
  readonly #log: FastifyBaseLogger
  readonly #queues = new Map<string, Promise<unknown>>()
  #resync: Promise<ResyncSummary> | null = null

  constructor (options: ResolvedOptions, db: ServiceState, client: GatewayClient, steps: readonly PipelineStep[], log: FastifyBaseLogger) {
    this.#options = options
    this.#db = db
    this.#client = client
    this.#steps = steps
    this.#log = log
  }

  /** Runs `work` after every earlier work queued under `key`. */
  async serialised<T> (key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key) ?? Promise.resolve()
    const current = previous.then(work, work)
    const tail = current.catch(() => {})
    this.#queues.set(key, tail)
    try {
      return await current
    } finally {
      if (this.#queues.get(key) === tail) this.#queues.delete(key)
    }
  }

  /** Runs the pipeline for an account (refusals and failures are thrown, see `runPipeline`). */
  async pipeline (source: PipelineSource, account: SsoAccount, origin: Origin, changed: readonly string[] | null = null): Promise<PipelineContext> {
    return await runPipeline(this.#steps, { source, account, changed, request: origin.request, log: origin.log })
  }

  /**
   * Before an account with a `user_id` is applied: if this service knew that id
   * under another username (a rename it missed), re-key first; then remember it.
   */
  async reconcileName (source: PipelineSource, account: SsoAccount, origin: Origin): Promise<void> {
    const userId = account.user_id
    if (userId === undefined) return
    const known = await this.#db.usernameOf(userId)
    if (known !== null && known !== account.username) await this.rename(source, userId, known, account.username, origin)
    else await this.#db.rememberUser(userId, account.username)
  }

  /** An account from an event or a resync: pipeline, then sessions of a disabled account end. */
  async applyAccount (source: 'event' | 'resync', account: SsoAccount, origin: Origin, changed: readonly string[] | null = null): Promise<AccountOutcome> {
    await this.reconcileName(source, account, origin)
    let refused = false
    try {
      await this.pipeline(source, account, origin, changed)
    } catch (err) {
      if (!isRefusal(err)) throw err
      refused = true
      origin.log.warn({ audit: 'account_refused', user: account.username, source, message: err.message }, 'a pipeline step refused the account')
    }
    await this.#db.rememberAccount(account.username, account)
    let ended = 0
    if (!account.is_active) ended = await this.#db.store.destroyByUser(account.username)
    origin.log.info({ audit: 'account_updated', user: account.username, source, active: account.is_active, refused, sessionsEnded: ended }, 'account applied')
    if (refused) return 'refused'
    return account.is_active ? 'updated' : 'disabled'
  }

  /**
   * A rename: every session of `oldUsername` becomes `username`'s, then `accounts.rename`.
   * `userId` is null when the gateway sends none (django-sso's `change_user_identy`).
   */
  async rename (source: PipelineSource, userId: string | null, oldUsername: string, username: string, origin: Origin): Promise<number> {
    // Only this user's sessions: if another user held `oldUsername` meanwhile, theirs stay theirs.
    const moved = await this.#db.store.rekeyUser(oldUsername, username, SESSION_USERNAME_PATHS,
      userId === null ? undefined : { path: '$.account.user_id', value: userId })
    if (userId !== null) await this.#db.rememberUser(userId, username)
    await this.#db.renameAccount(oldUsername, username)
    const rename = this.#options.accounts?.rename
    if (rename !== undefined) {
      try {
        await rename({ source, userId, oldUsername, username, request: origin.request, log: origin.log })
      } catch (err) {
        origin.log.error({ err, user: username, oldUsername }, 'accounts.rename failed')
        throw new AccountHookFailedError()
      }
    }
    origin.log.info({ audit: 'account_renamed', user: username, oldUsername, source, sessionsMoved: moved, handled: rename !== undefined }, 'account renamed')
    return moved
  }

  /**
   * `update_fields` (django-sso 2.x/3.x): the same fields changed for several users. Each
   * account is the last one known, with those fields replaced, applied as an `update_account`.
   */
  async updateFields (usernames: readonly string[], fields: Record<string, unknown>, origin: Origin): Promise<void> {
    for (const username of usernames) {
      await this.serialised(username, async () => {
        await this.applyAccount('event', mergeFields(await this.#db.knownAccount(username), fields), origin, Object.keys(fields))
      })
    }
  }

  /** A deletion: the user's sessions end, then `accounts.remove`. */
  async remove (source: 'event' | 'resync', userId: string | null, username: string, origin: Origin): Promise<number> {
    await this.#db.rememberAccount(username, null)
    let ended = await this.#db.store.destroyByUser(username)
    if (userId !== null) {
      const known = await this.#db.usernameOf(userId)
      if (known !== null && known !== username) ended += await this.#db.store.destroyByUser(known)
      await this.#db.rememberUser(userId, null)
    }
    const remove = this.#options.accounts?.remove
    if (remove !== undefined) {
      try {
        await remove({ source, userId, username, request: origin.request, log: origin.log })
      } catch (err) {
        origin.log.error({ err, user: username }, 'accounts.remove failed')
        throw new AccountHookFailedError()
      }
    }
    origin.log.info({ audit: 'account_deleted', user: username, source, sessionsEnded: ended, handled: remove !== undefined }, 'account deleted')
    return ended
  }

  /** `ssoService.resync()`: one at a time. */
  async resync (options: ResyncOptions = {}): Promise<ResyncSummary> {
    const pageSize = positiveInt('pageSize', options.pageSize, RESYNC_LIMITS.pageSize, RESYNC_LIMITS.maxPageSize)
    const maxPages = positiveInt('maxPages', options.maxPages, RESYNC_LIMITS.maxPages, Number.MAX_SAFE_INTEGER)
    if (this.#resync === null) {
      this.#resync = this.#runResync(pageSize, maxPages).finally(() => { this.#resync = null })
    }
    return await this.#resync
  }

  async #runResync (pageSize: number, maxPages: number): Promise<ResyncSummary> {
    const summary: ResyncSummary = { updated: 0, disabled: 0, deleted: 0, refused: 0, failed: 0, pages: 0, complete: false }
    const origin: Origin = { request: null, log: this.#log }
    this.#log.info({ audit: 'resync_started' }, 'resync started')
    let cursor: string | null = null
    while (summary.pages < maxPages) {
      const page = await this.#client.accounts(cursor, pageSize)
      summary.pages++
      if (page.invalid > 0) {
        summary.failed += page.invalid
        this.#log.warn({ audit: 'resync_invalid', count: page.invalid }, 'entries of a resync page that are not accounts were skipped')
      }
      for (const entry of page.accounts) {
        const user = entry.deleted ? entry.username : entry.account.username
        const key = (entry.deleted ? entry.userId : entry.account.user_id) ?? user
        try {
          await this.serialised(key, async () => {
            if (entry.deleted) {
              await this.remove('resync', entry.userId, entry.username, origin)
              summary.deleted++
            } else {
              summary[await this.applyAccount('resync', entry.account, origin)]++
            }
          })
        } catch {
          summary.failed++ // logged where it failed
        }
      }
      if (page.nextCursor === null) {
        summary.complete = true
        break
      }
      if (page.nextCursor === cursor) {
        this.#log.warn({ audit: 'resync_stuck' }, 'the gateway sent the same cursor again; resync stopped')
        break
      }
      cursor = page.nextCursor
    }
    this.#log.info({ audit: 'resync', ...summary }, 'resync finished')
    return summary
  }
}
