// One way to start Debian's Chromium for the browser tests: headless, with the flags this machine
// needs (no background networking: its connections are refused here), closed at teardown.
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Where Chromium is: Debian's `/usr/bin/chromium` (`bash .ci/run` installs it), or `CHROMIUM_PATH`. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Throws a clear error when Chromium is not installed (call before starting any process). */
export function requireChromium (): void {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: run \`bash .ci/run\` or \`apt-get install chromium\` (or set CHROMIUM_PATH)`)
}

/** A headless Chromium, closed when `t` ends. */
export async function launchChromium (t: { teardown: (fn: () => unknown) => void }): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}
