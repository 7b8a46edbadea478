import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { SsoAccount } from 'fastify-sso-protocol'
import { AccountDisabledError, AccountHookFailedError, LoginRefusedError } from './errors.js'
import type { ResolvedOptions } from './types.js'

/** Where an account comes from when it goes through the pipeline. */
export type PipelineSource = 'sign-in' | 'event' | 'resync'

/** What every pipeline step receives. Steps read and write it in order. */
export interface PipelineContext<Local = unknown> {
  /** `'sign-in'` (`/sso/accept/`), `'event'` (`update_account`) or `'resync'` (`ssoService.resync()`). */
  readonly source: PipelineSource
  /** The account as the gateway sent it. */
  readonly account: SsoAccount
  /** The fields an `update_account` event says changed; null at sign-in, on resync, or when the gateway does not say. */
  readonly changed: readonly string[] | null
  /** What the app keeps of the account; `map-attributes` fills it (every field but `username` and `user_id`). */
  attributes: Record<string, unknown>
  /** The app's local account: set by `find-account` or `create-account`, null until then. */
  local: Local | null
  /** True when `create-account` made `local` in this run. */
  created: boolean
  /** Free space for the app's own steps to pass data along. */
  readonly state: Record<string, unknown>
  /** The request being handled; null during a resync. */
  readonly request: FastifyRequest | null
  readonly log: FastifyBaseLogger
  /**
   * Refuses the account with a message for the user. At sign-in: a 403 page
   * showing the message, no session. On an event or a resync: logged, acknowledged.
   */
  refuse (message: string): never
}

/** One named step of the pipeline. Names of the default steps are stable. */
export interface PipelineStep {
  name: string
  run (ctx: PipelineContext<any>): void | Promise<void>
}

/** Second argument of `accounts.rename`: a `rename_account` event (or a rename found during a resync or sign-in). */
export interface AccountRenameContext {
  source: PipelineSource
  /** The user's stable id, or null when the gateway sends none (django-sso's `change_user_identy`). */
  userId: string | null
  oldUsername: string
  /** The new username. */
  username: string
  request: FastifyRequest | null
  log: FastifyBaseLogger
}

/** Second argument of `accounts.remove`: a `delete_account` event or a deleted account found by a resync. */
export interface AccountRemoveContext {
  source: 'event' | 'resync'
  userId: string | null
  username: string
  request: FastifyRequest | null
  log: FastifyBaseLogger
}

/**
 * The app's local accounts, as the default pipeline steps use them. Find by
 * `ctx.account.user_id` when the gateway sends it (it never changes), else by username.
 */
export interface AccountsAdapter<Local = unknown> {
  /** The local account for `ctx.account`, or null/undefined if there is none. */
  find (ctx: PipelineContext<Local>): Local | null | undefined | Promise<Local | null | undefined>
  /** Creates the local account (from `ctx.attributes`) and returns it. Not called for a disabled account. */
  create (ctx: PipelineContext<Local>): Local | Promise<Local>
  /** Updates `ctx.local` from `ctx.attributes`; may return the updated account. */
  update (ctx: PipelineContext<Local>): void | Local | Promise<void | Local>
  /** Re-keys the local account to `ctx.username` (never create a second one). */
  rename? (ctx: AccountRenameContext): void | Promise<void>
  /** Removes (or archives) the local account of a user deleted at the gateway. */
  remove? (ctx: AccountRemoveContext): void | Promise<void>
}

/** Names of the default steps, in order. */
export const DEFAULT_STEP_NAMES = ['check-active', 'map-attributes', 'find-account', 'create-account', 'update-account', 'on-account'] as const

/** The default steps, bound to the plugin's options. */
export function defaultSteps (options: Pick<ResolvedOptions, 'accounts' | 'onAccount'>): PipelineStep[] {
  const { accounts, onAccount } = options
  return [
    {
      name: 'check-active',
      run (ctx) {
        if (ctx.source === 'sign-in' && !ctx.account.is_active) throw new AccountDisabledError()
      }
    },
    {
      name: 'map-attributes',
      run (ctx) {
        const { username: _u, user_id: _id, ...attributes } = ctx.account
        ctx.attributes = attributes
      }
    },
    {
      name: 'find-account',
      async run (ctx) {
        if (accounts !== undefined) ctx.local = (await accounts.find(ctx)) ?? null
      }
    },
    {
      name: 'create-account',
      async run (ctx) {
        if (accounts === undefined || ctx.local !== null || !ctx.account.is_active) return
        ctx.local = await accounts.create(ctx)
        ctx.created = true
      }
    },
    {
      name: 'update-account',
      async run (ctx) {
        if (accounts === undefined || ctx.local === null || ctx.created) return
        const updated = await accounts.update(ctx)
        if (updated !== undefined) ctx.local = updated
      }
    },
    {
      name: 'on-account',
      async run (ctx) {
        if (onAccount !== undefined) await onAccount(ctx.account, { source: ctx.source, request: ctx.request, log: ctx.log })
      }
    }
  ]
}

function indexOf (steps: readonly PipelineStep[], name: string): number {
  const i = steps.findIndex((s) => s.name === name)
  if (i === -1) throw new Error(`fastify-sso-service: no pipeline step named ${JSON.stringify(name)}`)
  return i
}

/** A copy of `steps` with `step` inserted before the step named `name` (throws if there is none). */
export function insertBefore (steps: readonly PipelineStep[], name: string, step: PipelineStep): PipelineStep[] {
  const i = indexOf(steps, name)
  return [...steps.slice(0, i), step, ...steps.slice(i)]
}

/** A copy of `steps` with `step` inserted after the step named `name` (throws if there is none). */
export function insertAfter (steps: readonly PipelineStep[], name: string, step: PipelineStep): PipelineStep[] {
  const i = indexOf(steps, name)
  return [...steps.slice(0, i + 1), step, ...steps.slice(i + 1)]
}

/** A copy of `steps` with the step named `name` replaced by `step` (throws if there is none). */
export function replaceStep (steps: readonly PipelineStep[], name: string, step: PipelineStep): PipelineStep[] {
  const i = indexOf(steps, name)
  return [...steps.slice(0, i), step, ...steps.slice(i + 1)]
}

/** A copy of `steps` without the step named `name` (throws if there is none). */
export function removeStep (steps: readonly PipelineStep[], name: string): PipelineStep[] {
  const i = indexOf(steps, name)
  return [...steps.slice(0, i), ...steps.slice(i + 1)]
}

/** Whether an error is a refusal (a step said no), as opposed to a failure. */
export function isRefusal (err: unknown): err is Error & { code: string, statusCode: number } {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'FST_SSO_SERVICE_LOGIN_REFUSED' || code === 'FST_SSO_SERVICE_ACCOUNT_DISABLED'
}

/**
 * Runs `account` through `steps` in order. A refusal is rethrown as is
 * (`LoginRefusedError` or `AccountDisabledError`); any other error is logged
 * and becomes an `AccountHookFailedError`.
 */
export async function runPipeline (steps: readonly PipelineStep[], input: {
  source: PipelineSource
  account: SsoAccount
  changed?: readonly string[] | null
  request: FastifyRequest | null
  log: FastifyBaseLogger
}): Promise<PipelineContext> {
  const ctx: PipelineContext = {
    source: input.source,
    account: input.account,
    changed: input.changed ?? null,
    attributes: {},
    local: null,
    created: false,
    state: {},
    request: input.request,
    log: input.log,
    refuse (message: string): never {
      throw new LoginRefusedError(String(message).slice(0, 500))
    }
  }
  let current = ''
  try {
    for (const step of steps) {
      current = step.name
      await step.run(ctx)
    }
  } catch (err) {
    if (isRefusal(err)) throw err
    input.log.error({ err, user: input.account.username, step: current, source: input.source }, 'account pipeline failed')
    throw new AccountHookFailedError()
  }
  return ctx
}
