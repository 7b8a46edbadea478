import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { errors } from './errors.js'
import type { GatewayStore, ServicePatch, ServiceRecord, ServiceStore } from './store/store.js'

const PREFIX = 'sealed:v1:'

interface Key { id: string, key: Buffer }

/**
 * Encrypts the secrets a gateway must keep readable (each service's signing secret and a
 * django-sso service's token) with AES-256-GCM under a key from the environment, so a copy of
 * the database alone does not let anyone forge events or pose as a django-sso gateway. A value
 * reads `sealed:v1:<key id>:<iv>:<ciphertext and tag>`; the service id is authenticated with it,
 * so a sealed value copied to another service's row does not open.
 */
export class SecretBox {
  readonly #keys: Key[]

  constructor (keys: readonly string[]) {
    this.#keys = keys.map((k) => ({
      id: createHash('sha256').update(`fastify-sso key id:${k}`).digest('hex').slice(0, 8),
      key: createHash('sha256').update(`fastify-sso secrets key:${k}`).digest()
    }))
  }

  static isSealed (value: string): boolean {
    return value.startsWith(PREFIX)
  }

  seal (value: string, serviceId: string): string {
    const { id, key } = this.#keys[0] as Key
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(serviceId))
    const sealed = Buffer.concat([cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `${PREFIX}${id}:${iv.toString('base64url')}:${sealed.toString('base64url')}`
  }

  /** The plain value (a value stored before encryption was switched on is returned as it is). */
  open (value: string, serviceId: string): string {
    if (!SecretBox.isSealed(value)) return value
    const [id, iv, data] = value.slice(PREFIX.length).split(':') as [string, string, string]
    const key = this.#keys.find((k) => k.id === id)
    if (key === undefined) throw new errors.INVALID_OPTION('secretsKey', `no key given opens the secrets of service ${serviceId} (key id ${id})`)
    const bytes = Buffer.from(data, 'base64url')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url')).setAAD(Buffer.from(serviceId))
      decipher.setAuthTag(bytes.subarray(bytes.length - 16))
      return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      throw new errors.INVALID_OPTION('secretsKey', `the secrets of service ${serviceId} do not open: the stored value was altered or moved`)
    }
  }

  /** Whether `value` is sealed with the current (first) key. */
  current (value: string): boolean {
    return value.startsWith(`${PREFIX}${(this.#keys[0] as Key).id}:`)
  }
}

/**
 * The store as the gateway sees it: service records go in sealed and come out open. Only the
 * `services` aggregate hands service records over, so only it is wrapped (one place, whatever
 * the store); every other aggregate is the store's own.
 */
function sealedStore (store: GatewayStore, box: SecretBox): GatewayStore {
  const open = (s: ServiceRecord | null): ServiceRecord | null => s === null
    ? null
    : {
        ...s,
        signingSecret: box.open(s.signingSecret, s.id),
        djangoToken: s.djangoToken === null ? null : box.open(s.djangoToken, s.id),
        previous: s.previous?.signingSecret == null ? s.previous : { ...s.previous, signingSecret: box.open(s.previous.signingSecret, s.id) }
      }
  const seal = <T extends ServicePatch>(patch: T, id: string): T => {
    const out = { ...patch }
    if (patch.signingSecret !== undefined) out.signingSecret = box.seal(patch.signingSecret, id)
    if (patch.djangoToken !== undefined && patch.djangoToken !== null) out.djangoToken = box.seal(patch.djangoToken, id)
    if (patch.previous?.signingSecret != null) out.previous = { ...patch.previous, signingSecret: box.seal(patch.previous.signingSecret, id) }
    return out
  }
  const inner = store.services
  const services: ServiceStore = {
    create: async (s) => open(await inner.create(seal(s, s.id))) as ServiceRecord,
    byId: async (id) => open(await inner.byId(id)),
    byName: async (name) => open(await inner.byName(name)),
    byTokenHash: async (hash) => open(await inner.byTokenHash(hash)),
    list: async () => (await inner.list()).map((s) => open(s) as ServiceRecord),
    // Events carry no secret (the dispatcher signs each one with the service read open at
    // delivery), so `events` is handed the stored record as it is.
    update: async (id, patch, events) => open(await inner.update(id, seal(patch, id), events)),
    // These hand over no secret: the store's own.
    hasUser: inner.hasUser.bind(inner),
    users: inner.users.bind(inner)
  }
  return new Proxy(store, {
    get (target, prop, receiver) {
      if (prop === 'services') return services
      const value: unknown = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
}

/**
 * With keys: wraps the store so service secrets are sealed at rest, and seals (or re-seals
 * with the first key) every secret stored in the clear or under an older key. Without keys:
 * the store as it is, unless it holds sealed secrets (then `ready()` fails: events could not
 * be signed). `reseal: false` (the CLI, beside a running gateway) only checks that every
 * secret opens and leaves the stored values as they are.
 */
export async function protectSecrets (store: GatewayStore, keys: readonly string[], reseal = true): Promise<GatewayStore> {
  const services = await store.services.list()
  if (keys.length === 0) {
    const sealed = services.find((s) => SecretBox.isSealed(s.signingSecret))
    if (sealed !== undefined) throw new errors.INVALID_OPTION('secretsKey', `is required: the store holds encrypted secrets (service ${sealed.name})`)
    return store
  }
  const box = new SecretBox(keys)
  const sealed = sealedStore(store, box)
  for (const s of services) {
    // Every secret is opened now, so a wrong key or an altered value fails the start, not an event.
    const plain = (await sealed.services.byId(s.id)) as ServiceRecord
    if (!reseal || (box.current(s.signingSecret) && (s.djangoToken === null || box.current(s.djangoToken)) &&
      (s.previous?.signingSecret == null || box.current(s.previous.signingSecret)))) continue
    await sealed.services.update(s.id, { signingSecret: plain.signingSecret, djangoToken: plain.djangoToken, previous: plain.previous })
  }
  return sealed
}
