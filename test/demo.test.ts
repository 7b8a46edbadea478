// `pnpm demo` as a user runs it: a busy port stops it at once with a clear message; started,
// its banner comes last; Ctrl+C (SIGINT to the terminal's process group) stops all three apps
// and pnpm reports no failure.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { bindable, freePort } from '../scripts/fleet.mjs'
import { HttpBrowser } from './helpers/http-browser.js'
import { tempDir } from './helpers/temp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Demo { output: () => string, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, pid: number }

/** `npx -y pnpm@10 demo` in its own process group, like a terminal's foreground job. */
function demo (env: Record<string, string>): Demo {
  let output = ''
  const child = spawn('npx', ['-y', 'pnpm@10', 'demo'], {
    cwd: ROOT,
    env: { ...process.env, ...env, NODE_V8_COVERAGE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => { resolve({ code, signal }) }))
  const killer = setTimeout(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch {} }, 120_000)
  void exited.then(() => { clearTimeout(killer) })
  return { output: () => output, exited, pid: child.pid as number }
}

/** Waits for the demo's output to show something (bounded: the demo is killed after 2 min). */
async function until (what: string, check: () => boolean, exited: Promise<unknown>, orExit = false): Promise<void> {
  let done = false
  void exited.then(() => { done = true })
  while (!check()) {
    if (done && !orExit) throw new Error(`the demo exited before ${what}`)
    if (done) await new Promise((resolve) => setTimeout(resolve, 1000)) // the last output may still be in the pipe
    if (done && !check()) throw new Error(`the demo ended without ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

t.test('a busy port: the demo stops at once, naming the port and its variable', async (t) => {
  const busy = createServer()
  const port = await freePort()
  await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const run = demo({ GATEWAY_PORT: String(port), SERVICE_A_PORT: String(await freePort()), SERVICE_B_PORT: String(await freePort()), DEMO_DATA: tempDir('sso-demo-busy-') })
  t.equal((await run.exited).code, 1, 'it fails')
  t.match(run.output(), new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use \\(GATEWAY_PORT\\)`))
  t.notMatch(run.output(), /demo is running/, 'and never claims to be running')
})

t.test('started: readable log, banner last; Ctrl+C stops all three cleanly', async (t) => {
  const ports = { gateway: await freePort(), a: await freePort(), b: await freePort() }
  const run = demo({
    GATEWAY_PORT: String(ports.gateway),
    SERVICE_A_PORT: String(ports.a),
    SERVICE_B_PORT: String(ports.b),
    DEMO_DATA: tempDir('sso-demo-run-')
  })
  t.teardown(() => { try { process.kill(-run.pid, 'SIGKILL') } catch {} })
  await until('the banner', () => /Ctrl\+C stops all three\.\n/.test(run.output()), run.exited)
  const output = run.output()
  t.match(output, `Gateway     http://127.0.0.1:${ports.gateway}/welcome/`)
  t.notMatch(output, /"level":30/, 'no info-level JSON lines (warn level by default)')
  t.equal(output.trimEnd().split('\n').pop()?.trim(), 'Ctrl+C stops all three.', 'the banner is the last thing printed')
  t.match(output, `Admin       http://127.0.0.1:${ports.gateway}/console/`, 'where the admin console is')
  // alice is an admin of the demo: signed in, the console is hers.
  const browser = new HttpBrowser()
  const form = await browser.go('GET', `http://127.0.0.1:${ports.gateway}/login/`)
  await browser.go('POST', form.url, { username: 'alice', password: 'alice-demo-password', _csrf: HttpBrowser.csrf(form.body) })
  const consolePage = await browser.go('GET', `http://127.0.0.1:${ports.gateway}/console/`)
  t.equal(consolePage.status, 200, 'the console opens for alice')
  t.match(consolePage.body, /Signed in as <strong>alice<\/strong>/)

  process.kill(-run.pid, 'SIGINT') // what a terminal does on Ctrl+C
  await until('"Stopped."', () => /Stopped\./.test(run.output()), run.exited, true)
  const status = await run.exited
  // npx, outermost, ends the way Ctrl+C ends a program (by SIGINT) or with 0; never an error code.
  t.ok(status.code === 0 || status.signal === 'SIGINT', `ended as after Ctrl+C (${JSON.stringify(status)})`)
  t.notMatch(run.output(), /ELIFECYCLE|Command failed|Error/, 'pnpm reports no failure')
  for (const port of Object.values(ports)) t.ok(await bindable(port), `port ${port} is free again: the app stopped`)
})
