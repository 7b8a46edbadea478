import { errors } from '../errors.js'

/** Standard input as the CLI reads it. */
export type Input = NodeJS.ReadableStream & { isTTY?: boolean, setRawMode?: (raw: boolean) => unknown }

/** The first line of piped standard input (`--password-stdin`), without its line ending. */
async function firstLine (stdin: Input): Promise<string> {
  let text = ''
  for await (const chunk of stdin) {
    text += String(chunk)
    if (text.includes('\n') || text.length > 8192) break
  }
  return text.split(/\r?\n/)[0] as string
}

/** One line typed at a terminal without echo (backspace works; Ctrl+C and Ctrl+D cancel). */
async function hidden (stdin: Input, out: { write: (s: string) => unknown }, prompt: string): Promise<string> {
  out.write(prompt)
  stdin.setRawMode?.(true)
  stdin.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = ''
      const onData = (chunk: Buffer | string): void => {
        for (const ch of String(chunk)) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData)
            resolve(value)
            return
          }
          if (ch === '\u0003' || ch === '\u0004') {
            stdin.off('data', onData)
            reject(new errors.INVALID_PASSWORD('cancelled'))
            return
          }
          if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('')
          else value += ch
        }
      }
      stdin.on('data', onData)
    })
  } finally {
    stdin.setRawMode?.(false)
    stdin.pause()
    out.write('\n')
  }
}

/**
 * A new password: the first line of standard input with `fromStdin`, else typed twice at the
 * terminal without echo; null when standard input is neither (a pipe without `--password-stdin`).
 * Never from the command line, where other users of the machine can read it.
 */
export async function readPassword (stdin: Input, out: { write: (s: string) => unknown }, fromStdin: boolean): Promise<string | null> {
  if (fromStdin) return await firstLine(stdin)
  if (stdin.isTTY !== true) return null
  const first = await hidden(stdin, out, 'New password: ')
  const again = await hidden(stdin, out, 'Again: ')
  if (first !== again) throw new errors.INVALID_PASSWORD('the two entries differ')
  return first
}
