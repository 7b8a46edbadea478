// `pnpm demo`: the gateway on 3000, service A on 3001, service B on 3002, data kept in .demo-data/.
import { fileURLToPath } from 'node:url'
import { startFleet } from './fleet.mjs'

const env = process.env
const password = env.DEMO_PASSWORD ?? 'alice-demo-password'
const fleet = await startFleet({
  dataDir: fileURLToPath(new URL('../.demo-data/', import.meta.url)),
  ports: { gateway: Number(env.GATEWAY_PORT ?? 3000), a: Number(env.SERVICE_A_PORT ?? 3001), b: Number(env.SERVICE_B_PORT ?? 3002) },
  password,
  output: 'inherit',
  env: { LOG_LEVEL: env.LOG_LEVEL ?? 'info' }
})

console.log(`
  fastify-sso demo is running

  Gateway     ${fleet.urls.gateway}/welcome/
  Service A   ${fleet.urls.a}/        (private page: ${fleet.urls.a}/private)
  Service B   ${fleet.urls.b}/        (account page: ${fleet.urls.b}/account)

  Sign in as  alice / ${password}${env.DEMO_PASSWORD === undefined ? '   (set DEMO_PASSWORD to choose another on first start)' : ''}
  Data        .demo-data/ (delete it to start over)

  1. Open Service A's private page and sign in at the gateway.
  2. Open Service B's account page: you are signed in without a password.
  3. On B, follow 'Sign out…' and press 'Sign out'; reload A: you are signed out there too.

  Ctrl+C stops all three.
`)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { fleet.stop().then(() => process.exit(0)) })
}
