import type { FastifyError, FastifyPluginAsync } from 'fastify'
import { checkNextUrl, PATHS } from 'fastify-sso-protocol'
import type { SsoAccount } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { AccountDisabledError, AccountHookFailedError, NoLoginInProgressError } from '../errors.js'
import { loginHref, sendErrorPage } from '../html.js'
import { sessionOf, userFromSession } from '../session.js'
import type { SignedInSession } from '../session.js'

/**
 * `GET /sso/accept/`: the gateway sends the browser here after sign-in. Reads
 * the request token from THIS browser session, redeems it (`/sso/get/`, then
 * `/sso/make_used/`), lets the app set up the account, and starts a fresh session.
 */
export const acceptRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client }) => {
  for (const url of bothForms(PATHS.accept)) {
    fastify.get(url, { schema: { querystring: { type: 'object' } } }, async (request, reply) => {
      const session = sessionOf(request)
      const pending = session.ssoRequest
      if (pending === undefined) {
        request.log.warn({ audit: 'login_failed', step: 'accept', reason: 'no sign-in in progress' }, 'accept without a sign-in in this session')
        return sendErrorPage(reply, new NoLoginInProgressError(), loginHref('/'), 'Sign in')
      }
      delete session.ssoRequest
      const retry = loginHref(pending.next)
      let username: string | undefined
      try {
        const got = await client.get(pending.token)
        username = got.username
        await client.makeUsed(pending.token)
        const account: SsoAccount = got.account ?? { username: got.username, is_active: true, is_staff: false, is_superuser: false }
        if (!account.is_active) throw new AccountDisabledError()
        if (options.onAccount !== undefined) {
          try {
            await options.onAccount(account, { source: 'sign-in', request, log: request.log })
          } catch (err) {
            request.log.error({ err, user: username }, 'onAccount failed at sign-in')
            throw new AccountHookFailedError()
          }
        }
        await request.session.regenerate()
        const fresh = sessionOf(request)
        const now = Date.now()
        fresh.user = got.username
        if (got.ssoSession !== null) fresh.sso = got.ssoSession
        // A service session never outlives the gateway session it came from.
        if (got.ssoSessionEndsAt !== null) fresh.endsAt = got.ssoSessionEndsAt
        fresh.account = account
        fresh.createdAt = now
        fresh.seenAt = now
        request.ssoUser = userFromSession(fresh as SignedInSession)
        request.log.info({ audit: 'login', user: got.username }, 'signed in through the gateway')
        return reply.redirect(checkNextUrl(got.nextUrl) ?? '/')
      } catch (err) {
        const error = err as FastifyError
        request.log.warn({ audit: 'login_failed', step: 'accept', code: error.code, user: username }, 'sign-in could not be completed')
        return sendErrorPage(reply, error, retry)
      }
    })
  }
}
