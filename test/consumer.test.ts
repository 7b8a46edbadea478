// What an npm user gets: the three packages packed with `pnpm pack` (which rewrites workspace:
// and catalog: versions, as `pnpm publish` does), installed from the tarballs into a fresh
// project with npm and with pnpm 10 (approving only the build the README names), then both
// plugins signing a user in over real HTTP, the `sso-gateway` bin, a CommonJS require(), and a TypeScript consumer
// typechecked against the installed .d.ts with skipLibCheck: false.
// Packages come from this machine's npm registry configuration, cache first.
import { execFile } from 'node:child_process'
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from './helpers/temp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FIXTURE = join(ROOT, 'test', 'fixtures', 'consumer')
const PACKAGES = { 'fastify-sso-protocol': 'packages/sso-protocol', 'fastify-sso-gateway': 'packages/fastify-sso-gateway', 'fastify-sso-service': 'packages/fastify-sso-service' }
const INSTALL_TIMEOUT = 12 * 60_000 // npm compiles better-sqlite3 when no prebuilt binary can be downloaded
const RUN_TIMEOUT = 90_000

// Installing and building take minutes on a busy machine; every step below has its own bound.
t.setTimeout(30 * 60_000)

interface Run { code: number, stdout: string, stderr: string }

async function run (cmd: string, args: string[], cwd: string, timeout: number, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr: err !== null && err.killed ? `${stderr}\n(killed after ${timeout} ms)` : stderr })
    })
  })
}

const pnpm = async (args: string[], cwd: string, timeout: number, env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  await run('npx', ['-y', 'pnpm@10', ...args], cwd, timeout, env)

// Variables the workspace's own `pnpm test` sets for its scripts must not leak into the consumer's installs.
const CLEAN_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('npm_') || k.startsWith('PNPM_') || k === 'NODE_OPTIONS' || k.startsWith('NODE_V8_COVERAGE') || k.startsWith('_TAPJS')).map((k) => [k, undefined]))

/** The workspace catalog's versions (`name: range` lines under `catalog:`), so the consumer uses the same fastify and TypeScript. */
const CATALOG: Record<string, string> = (() => {
  const yaml = readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8')
  const block = yaml.slice(yaml.indexOf('\ncatalog:\n') + 10).split(/\n(?=\S)/)[0] as string
  return Object.fromEntries(block.split('\n').map((l) => /^\s+"?([^":]+)"?:\s*(\S+)\s*$/.exec(l)).filter((m) => m !== null).map((m) => [m[1], m[2]]))
})()

function tarballFiles (tgz: string): Promise<Run> {
  return run('tar', ['-tzf', tgz], ROOT, 30_000)
}

t.test('packed, installed with npm and with pnpm 10, both plugins sign a user in', async (t) => {
  const packs = tempDir('sso-consumer-packs-')
  const tarballs: Record<string, string> = {}
  for (const [name, dir] of Object.entries(PACKAGES)) {
    const packed = await pnpm(['pack', '--pack-destination', packs], join(ROOT, dir), 120_000, CLEAN_ENV)
    t.equal(packed.code, 0, `pnpm pack ${name}`, { stderr: packed.stderr })
    const file = readdirSync(packs).find((f) => f.startsWith(`${name}-`) && f.endsWith('.tgz'))
    t.ok(file, `${name} tarball made`)
    tarballs[name] = join(packs, file as string)

    // What the tarball ships: LICENSE, README, package.json and what runs; nothing else.
    const list = (await tarballFiles(tarballs[name] as string)).stdout.trim().split('\n')
    const extra = list.filter((f) => !/^package\/(LICENSE|README\.md|package\.json|dist\/.+\.(js|d\.ts)|views\/[a-z-]+\.(eta|css))$/.test(f))
    t.same(extra, [], `${name}: only LICENSE, README, package.json and what runs`)
    t.ok(list.includes('package/LICENSE') && list.includes('package/README.md'), `${name}: LICENSE and README`)
    const manifest = JSON.parse((await run('tar', ['-xzOf', tarballs[name] as string, 'package/package.json'], ROOT, 30_000)).stdout) as Record<string, Record<string, string> | string>
    const versions = JSON.stringify([manifest.dependencies, manifest.peerDependencies])
    t.notMatch(versions, /workspace:|catalog:/, `${name}: workspace and catalog versions rewritten`)
    t.equal((manifest.engines as Record<string, string>).node, '>=20.19', `${name}: the Node floor where require() of ES modules works`)
    t.match(manifest, { license: 'MIT', repository: { type: 'git' }, bugs: { url: /^https:/ }, homepage: /^https:/ })
  }
  const js = (await run('tar', ['-xzOf', tarballs['fastify-sso-gateway'] as string, 'package/dist/index.js'], ROOT, 30_000)).stdout
  t.notMatch(js, /sourceMappingURL/, 'no source map comments pointing at files not shipped')

  // One install at a time: each may compile better-sqlite3 for minutes, and the rest of the
  // suite runs beside this test.
  const installs: Array<{ installer: 'npm' | 'pnpm', dir: string, install: Run }> = []
  for (const installer of ['npm', 'pnpm'] as const) {
    const dir = tempDir(`sso-consumer-${installer}-`)
    for (const f of ['sign-in.mjs', 'consumer.ts', 'tsconfig.json', 'require.cjs']) copyFileSync(join(FIXTURE, f), join(dir, f))
    const local = Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]))
    const manifest: Record<string, unknown> = {
      name: `consumer-${installer}`,
      private: true,
      type: 'module',
      dependencies: { ...local, fastify: CATALOG.fastify },
      devDependencies: { typescript: CATALOG.typescript, '@types/node': CATALOG['@types/node'] },
      // The protocol package is not on the registry yet: every request for it resolves to the tarball.
      overrides: { 'fastify-sso-protocol': local['fastify-sso-protocol'] }
    }
    if (installer === 'pnpm') {
      // pnpm 10 runs no dependency build script unless approved: the README approves better-sqlite3 only.
      manifest.pnpm = { onlyBuiltDependencies: ['better-sqlite3'], overrides: manifest.overrides }
      delete manifest.overrides
    }
    writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2))
    const install = installer === 'npm'
      ? await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir, INSTALL_TIMEOUT, CLEAN_ENV)
      : await pnpm(['install', '--prefer-offline'], dir, INSTALL_TIMEOUT, CLEAN_ENV)
    installs.push({ installer, dir, install })
  }

  for (const { installer, dir, install } of installs) {
    await t.test(`installed with ${installer}`, async (t) => {
      t.equal(install.code, 0, `${installer} install`, { stderr: install.stderr.slice(-4000), stdout: install.stdout.slice(-4000) })
      if (install.code !== 0) return
      if (installer === 'pnpm') t.notMatch(install.stdout + install.stderr, /Ignored build scripts/, 'no other dependency needs a build script approved')

      const signIn = await run(process.execPath, ['sign-in.mjs'], dir, RUN_TIMEOUT, CLEAN_ENV)
      t.equal(signIn.code, 0, 'the consumer app ran (no crash on load)', { stderr: signIn.stderr.slice(-4000), signal: signIn.code })
      const result = JSON.parse(signIn.stdout.trim().split('\n').pop() ?? '{}') as { signedInAs?: string, welcome?: string, secureCookiesOverHttp?: number }
      t.equal(result.signedInAs, 'alice', 'signed in at the service through the gateway over real HTTP')
      t.equal(result.welcome, 'alice', 'the README\'s first try: signed in at the gateway itself, its welcome page says who')
      t.equal(result.secureCookiesOverHttp, 0, 'no Secure cookie on plain http (a browser would drop it)')
      t.match(signIn.stdout + signIn.stderr, /no sessionSecret option/, 'the first-try warning is shown')

      // The gateway's CLI, as npm and pnpm link it (node_modules/.bin, shebang, executable).
      const help = await run('npx', ['--no-install', 'sso-gateway', '--help'], dir, RUN_TIMEOUT, CLEAN_ENV)
      t.equal(help.code, 0, 'npx sso-gateway --help', { stderr: help.stderr.slice(-2000) })
      t.match(help.stdout, /Usage: sso-gateway <command>/)
      const usage = await run('npx', ['--no-install', 'sso-gateway', 'user', 'list'], dir, RUN_TIMEOUT, CLEAN_ENV)
      t.equal(usage.code, 2, 'a usage error exits 2 (no database given)')

      const required = await run(process.execPath, ['require.cjs'], dir, RUN_TIMEOUT, CLEAN_ENV)
      t.equal(required.stdout.trim(), 'required', 'require() from CommonJS', { stderr: required.stderr.slice(-2000) })

      const tsc = await run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir, 5 * 60_000, CLEAN_ENV)
      t.equal(tsc.code, 0, 'a TypeScript consumer typechecks against the installed .d.ts (skipLibCheck: false)', { stdout: tsc.stdout.slice(-4000) })
    })
  }
})
