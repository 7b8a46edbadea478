import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A fresh folder under the system's temp dir, removed when this test file's process exits
 * (after every teardown, so after the processes that used it were stopped).
 */
export function tempDir (prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  process.once('exit', () => { rmSync(dir, { recursive: true, force: true, maxRetries: 3 }) })
  return dir
}
