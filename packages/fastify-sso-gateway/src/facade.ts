import type { Gateway } from './gateway.js'
import type { SsoGatewayApi } from './types.js'

const behind = new WeakMap<SsoGatewayApi, Gateway>()

/**
 * The `fastify.ssoGateway` decorator: a frozen object with exactly the methods `SsoGatewayApi`
 * declares, each calling the internal gateway. The store, password hashes and the routes'
 * helpers stay out of reach.
 */
export function createFacade (gateway: Gateway): SsoGatewayApi {
  const api: SsoGatewayApi = {
    registerService: async (input) => await gateway.registerService(input),
    getService: async (name) => await gateway.getService(name),
    listServices: async () => await gateway.listServices(),
    setServiceEnabled: async (name, enabled) => await gateway.setServiceEnabled(name, enabled),
    updateService: async (name, patch) => await gateway.updateService(name, patch),
    rotateSecrets: async (name, input) => await gateway.rotateSecrets(name, input),
    auditLog: async (filter) => await gateway.auditLog(filter),
    createUser: async (input) => await gateway.createUser(input),
    listUsers: async (options) => await gateway.listUsers(options),
    getUser: async (username) => await gateway.getUser(username),
    updateUser: async (username, patch) => await gateway.updateUser(username, patch),
    disableUser: async (username) => await gateway.disableUser(username),
    logoutUser: async (username) => await gateway.logoutUser(username),
    renameUser: async (username, newUsername) => await gateway.renameUser(username, newUsername),
    deleteUser: async (username) => { await gateway.deleteUser(username) },
    changePassword: async (username, password, options) => await gateway.changePassword(username, password, options),
    listSessions: async (username) => await gateway.listSessions(username),
    revokeSession: async (username, ssoSession) => await gateway.revokeSession(username, ssoSession),
    revokeOtherSessions: async (username, keep) => await gateway.revokeOtherSessions(username, keep),
    groups: Object.freeze({
      create: async (name: string) => { await gateway.groups.create(name) },
      delete: async (name: string) => await gateway.groups.delete(name),
      list: async () => await gateway.groups.list(),
      addMember: async (group: string, username: string) => { await gateway.groups.addMember(group, username) },
      removeMember: async (group: string, username: string) => { await gateway.groups.removeMember(group, username) },
      members: async (group: string) => await gateway.groups.members(group),
      of: async (username: string) => await gateway.groups.of(username)
    }),
    events: Object.freeze({
      status: async () => await gateway.events.status(),
      dead: async (limit?: number) => await gateway.events.dead(limit),
      replay: async (id: string) => await gateway.events.replay(id),
      flush: async () => { await gateway.events.flush() }
    })
  }
  Object.freeze(api)
  behind.set(api, gateway)
  return api
}

/**
 * For this package's tests only (not reachable through the package's `exports`): the
 * internal gateway behind a decorator.
 */
export function gatewayBehind (api: SsoGatewayApi): Gateway {
  const gateway = behind.get(api)
  if (gateway === undefined) throw new TypeError('not a fastify-sso-gateway decorator')
  return gateway
}
