import type { FastifyError, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { checkNextUrl, MAX_TOKEN_LENGTH, PATHS } from 'fastify-sso-protocol'
import type { SsoAccount } from 'fastify-sso-protocol'
import { bothForms } from '../context.js'
import type { RouteContext } from '../context.js'
import { FreshLoginNotConfirmedError, NoLoginInProgressError, NoSessionCookieError } from '../errors.js'
import { loginHref, sendErrorPage, sendRefusalPage } from '../html.js'
import { isRefusal } from '../pipeline.js'
import { sessionOf, userFromSession } from '../session.js'
import type { SignedInSession } from '../session.js'

/** How far the gateway's clock may be behind ours when checking a forced sign-in, in ms. */
export const AUTH_TIME_SKEW = 60_000

/** Whether a forced sign-in (`prompt=login`) really entered the password after it started. */
function freshEnough (authTime: number | null, startedAt: number): boolean {
  return authTime !== null && authTime >= startedAt - AUTH_TIME_SKEW
}

/**
 * `GET /sso/accept/`: the gateway sends the browser here after sign-in. Reads
 * the request token from THIS browser session, redeems it (`/sso/get/`, then
 * `/sso/make_used/`), runs the account through the pipeline, and starts a fresh
 * session. A declined passive check (`prompt=none`) continues anonymously.
 */
export const acceptRoutes: FastifyPluginAsync<RouteContext> = async (fastify, { options, client, sync, db, pages }) => {
  for (const url of bothForms(PATHS.accept)) {
    fastify.get(url, {
      schema: { querystring: { type: 'object', properties: { code: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } } } },
      // The one-time code in the URL is a credential until it is used: never logged.
      logSerializers: { req: (req: FastifyRequest) => ({ method: req.method, url: req.url.replace(/([?&]code=)[^&#]*/g, '$1[redacted]') }) }
    }, async (request, reply) => {
      // The gateway's code for the browser it sent here (fastify-sso gateways; django-sso ones send none).
      const code = (request.query as { code?: string }).code
      const session = sessionOf(request)
      const pending = session.ssoRequest
      if (pending === undefined && request.cookies[options.cookieName] === undefined) {
        request.log.warn({
          audit: 'login_failed',
          step: 'accept',
          reason: 'no session cookie',
          cookieName: options.cookieName,
          cookieSecure: options.cookieSecure,
          protocol: request.protocol
        }, `accept without the ${options.cookieName} cookie: the browser did not keep it. A Secure cookie is dropped on plain http: check the cookieSecure option (${String(options.cookieSecure)}) and, behind an HTTPS proxy, Fastify's trustProxy`)
        return sendErrorPage(reply, pages, new NoSessionCookieError(), loginHref('/'), 'common.signIn')
      }
      if (pending === undefined) {
        request.log.warn({ audit: 'login_failed', step: 'accept', reason: 'no sign-in in progress' }, 'accept without a sign-in in this session')
        return sendErrorPage(reply, pages, new NoLoginInProgressError(), loginHref('/'), 'common.signIn')
      }
      delete session.ssoRequest
      const retry = loginHref(pending.next, pending.prompt)
      let username: string | undefined
      try {
        const got = await client.get(pending.token, pending.prompt === 'none', code)
        if ('declined' in got) {
          // Passive check, browser not signed in at the gateway: continue anonymously.
          session.passiveChecked = Date.now()
          request.ssoPassiveChecked = true
          request.log.info({ audit: 'login_passive_anonymous' }, 'passive sign-in: not signed in at the gateway')
          return reply.redirect(pending.next) // checked by /login/ before it was stored server-side
        }
        username = got.username
        await client.makeUsed(pending.token, code)
        if (pending.prompt === 'login' && !freshEnough(got.authTime, pending.startedAt)) throw new FreshLoginNotConfirmedError()
        // A django-sso gateway's answer has no account: the one its update_account delivered
        // (sent before the browser came back) stands, never flags the gateway did not send.
        const account: SsoAccount = got.account ?? await db.knownAccount(got.username)
        await sync.serialised(account.user_id ?? account.username, async () => {
          await sync.reconcileName('sign-in', account, { request, log: request.log })
          await sync.pipeline('sign-in', account, { request, log: request.log })
        })
        await request.session.regenerate()
        const fresh = sessionOf(request)
        const now = Date.now()
        fresh.user = got.username
        if (got.ssoSession !== null) fresh.sso = got.ssoSession
        // A service session never outlives the gateway session it came from.
        if (got.ssoSessionEndsAt !== null) fresh.endsAt = got.ssoSessionEndsAt
        if (got.authTime !== null) fresh.authTime = got.authTime
        if (got.issuedAt !== null) fresh.issuedAt = got.issuedAt
        fresh.account = account
        fresh.createdAt = now
        fresh.seenAt = now
        request.ssoUser = userFromSession(fresh as SignedInSession)
        request.ssoPassiveChecked = false
        request.log.info({ audit: 'login', user: got.username, prompt: pending.prompt }, 'signed in through the gateway')
        return reply.redirect(checkNextUrl(got.nextUrl) ?? '/')
      } catch (err) {
        const error = err as FastifyError
        if (isRefusal(error)) {
          request.log.warn({ audit: 'login_refused', user: username, code: error.code, message: error.message }, 'a pipeline step refused the sign-in')
          return sendRefusalPage(reply, pages, error.message, options.gatewayUrl)
        }
        request.log.warn({ audit: 'login_failed', step: 'accept', code: error.code, user: username }, 'sign-in could not be completed')
        return sendErrorPage(reply, pages, error, retry)
      }
    })
  }
}
