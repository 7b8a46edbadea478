import type { FastifyRequest } from 'fastify'
import { MAX_TOKEN_LENGTH, safeEqual } from 'fastify-sso-protocol'
import { errors } from './errors.js'
import type { Gateway } from './gateway.js'
import type { ServiceRecord } from './store/store.js'

/**
 * The service calling a protocol endpoint, proven by its secret in `X-Token` or the
 * `token` field (never the query string). A secret sent both ways must match. Wrong,
 * missing and disabled-service secrets get the same 401.
 */
export async function authenticateService (request: FastifyRequest, gateway: Gateway): Promise<ServiceRecord> {
  const header = request.headers['x-token']
  const field = (request.body as { token?: unknown } | undefined)?.token
  if (header !== undefined && field !== undefined && !(typeof header === 'string' && typeof field === 'string' && safeEqual(header, field))) {
    request.log.warn({ audit: 'service_auth_failed', reason: 'conflicting tokens' }, 'sso service authentication failed')
    throw new errors.CONFLICTING_TOKEN()
  }
  const secret = header ?? field
  const service = typeof secret === 'string' && secret.length > 0 && secret.length <= MAX_TOKEN_LENGTH
    ? await gateway.serviceBySecret(secret)
    : null
  if (service === null) {
    request.log.warn({ audit: 'service_auth_failed', reason: secret === undefined ? 'missing token' : 'unknown token' }, 'sso service authentication failed')
    throw new errors.UNAUTHORIZED_SERVICE()
  }
  return service
}
