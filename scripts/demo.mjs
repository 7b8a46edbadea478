// `pnpm demo`: the gateway on 3000, service A on 3001, service B on 3002, data kept in .demo-data/.
// Environment: GATEWAY_PORT, SERVICE_A_PORT, SERVICE_B_PORT, DEMO_DATA, DEMO_PASSWORD, LOG_LEVEL
// (see the README's Quick start).
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bindable, startFleet } from './fleet.mjs'

const env = process.env
const password = env.DEMO_PASSWORD ?? 'alice-demo-password'
const dataDir = env.DEMO_DATA === undefined ? fileURLToPath(new URL('../.demo-data/', import.meta.url)) : resolve(env.DEMO_DATA)

function fail (message) {
  console.error(`\n  fastify-sso demo: ${message}\n`)
  process.exit(1)
}

const ports = {}
for (const [key, variable, def] of [['gateway', 'GATEWAY_PORT', 3000], ['a', 'SERVICE_A_PORT', 3001], ['b', 'SERVICE_B_PORT', 3002]]) {
  const port = Number(env[variable] ?? def)
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${variable}=${env[variable]} is not a port number`)
  // Fail fast: another program on the port would answer in the demo's place.
  if (!await bindable(port)) fail(`port ${port} on 127.0.0.1 is in use (${variable}); stop what uses it, or choose another: ${variable}=${port + 10} pnpm demo`)
  ports[key] = port
}

const starting = startFleet({
  dataDir,
  ports,
  password,
  output: 'inherit',
  // Ctrl+C reaches only this process (the apps run in their own process group): it stops them.
  detached: true,
  // Readable: warnings and errors only (LOG_LEVEL=info shows every request and audit record).
  env: { LOG_LEVEL: env.LOG_LEVEL ?? 'warn' },
  // alice is an admin of the demo: the console is hers.
  appEnv: { gateway: { DEMO_ADMIN: '1' } }
})
let stopping = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    console.log('\n  Stopping the demo...')
    // Even during startup: wait for the apps started so far, then stop them all.
    starting.then((fleet) => fleet.stop(), () => {}).then(() => { console.log('  Stopped.'); process.exit(0) }, () => process.exit(1))
  })
}

let fleet
try {
  fleet = await starting
} catch (err) {
  fail(`could not start: ${err.message}`)
}
if (stopping) await new Promise(() => {})

console.log(`
  fastify-sso demo is running

  Gateway     ${fleet.urls.gateway}/welcome/
  Service A   ${fleet.urls.a}/        (private page: ${fleet.urls.a}/private)
  Service B   ${fleet.urls.b}/        (account page: ${fleet.urls.b}/account)

  Admin       ${fleet.urls.gateway}/console/   (alice is an admin; changes ask for her password again after 10 minutes)

  Sign in as  alice / ${password}${env.DEMO_PASSWORD === undefined ? '   (set DEMO_PASSWORD to choose another on first start)' : ''}
  Data        ${env.DEMO_DATA ?? '.demo-data/'} (delete it to start over)
  Logs        level ${env.LOG_LEVEL ?? 'warn'} (LOG_LEVEL=info for every request)

  1. Open Service A's private page and sign in at the gateway.
  2. Open Service B's account page: you are signed in without a password.
  3. On B, follow 'Sign out…' and press 'Sign out'; reload A: you are signed out there too.
  4. Open the admin console: users, groups, services, event delivery, sessions, audit log.
     Or from a terminal: pnpm exec sso-gateway user list --database .demo-data/gateway.sqlite

  Ctrl+C stops all three.
`)
