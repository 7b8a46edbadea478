import t from 'tap'
import { checkNextUrl, MAX_NEXT_URL_LENGTH } from '../src/index.js'

// Every case asserts the exact result: the value itself (accepted, returned
// unchanged) or null (refused). Families follow the OWASP Unvalidated Redirects
// cheat sheet, PortSwigger's open-redirect research and PayloadsAllTheThings
// "Open Redirect".
const ACCEPT = true
const REFUSE = false

const cases: Array<[string, unknown, boolean]> = [
  // ordinary relative paths
  ['root', '/', ACCEPT],
  ['one segment', '/x', ACCEPT],
  ['query, encoded space and fragment', '/a/b?c=1&d=%20#frag', ACCEPT],
  ['trailing slash', '/dashboard/', ACCEPT],
  ['query holding a url', '/search?next=https://evil.com', ACCEPT],
  ['query holding //', '/p?x=//evil.com', ACCEPT],
  ['fragment holding //', '/#//evil.com', ACCEPT],
  ['encoded percent sign in the query', '/search?q=100%25', ACCEPT],
  ['lone percent sign', '/100%', ACCEPT],
  ['encoded UTF-8 (café)', '/caf%C3%A9', ACCEPT],
  ['invalid UTF-8 escape', '/%ff', ACCEPT],
  ['dot segments staying on the site', '/a/../b/./c', ACCEPT],
  ['encoded dot segments staying on the site', '/%2e%2e/%2e%2e/etc', ACCEPT],
  ['a colon later in the path', '/javascript:alert(1)', ACCEPT],
  // judgement calls (see README): same-site paths, so accepted
  ['encoded slash in the middle', '/path%2Fwith-encoded-slash-in-middle', ACCEPT],
  ['@ in a path is not userinfo', '/@evil.com', ACCEPT],
  ['encoded fraction slash is just a character', '/%E2%81%84%E2%81%84evil.com', ACCEPT],
  ['encoded space then slash', '/%20/evil.com', ACCEPT],
  ['exactly the length limit', '/' + 'a'.repeat(MAX_NEXT_URL_LENGTH - 1), ACCEPT],

  // absolute and scheme URLs
  ['https URL', 'https://evil.com', REFUSE],
  ['http URL', 'http://evil.com/x', REFUSE],
  ['userinfo trick', 'https://good.example@evil.com', REFUSE],
  ['userinfo trick, relative', '//good.example@evil.com', REFUSE],
  ['scheme without slashes', 'https:evil.com', REFUSE],
  ['javascript:', 'javascript:alert(1)', REFUSE],
  ['JavaScript: mixed case', 'JaVaScRiPt:alert(1)', REFUSE],
  ['javascript: after a space', ' javascript:alert(1)', REFUSE],
  ['javascript: after a tab', '\tjavascript:alert(1)', REFUSE],
  ['javascript: after a control char', '\x01javascript:alert(1)', REFUSE],
  ['javascript: with an embedded tab', 'java\tscript:alert(1)', REFUSE],
  ['data:', 'data:text/html,<script>alert(1)</script>', REFUSE],
  ['DATA: upper case', 'DATA:text/html;base64,PHNjcmlwdD4=', REFUSE],
  ['vbscript:', 'vbscript:msgbox(1)', REFUSE],
  ['VBScript: after a newline', '\nVBScript:msgbox(1)', REFUSE],
  // scheme-relative and slash/backslash mixes
  ['scheme-relative', '//evil.com', REFUSE],
  ['three slashes', '///evil.com', REFUSE],
  ['four slashes', '////evil.com', REFUSE],
  ['slash backslash', '/\\evil.com', REFUSE],
  ['two backslashes', '\\\\evil.com', REFUSE],
  ['one backslash', '\\evil.com', REFUSE],
  ['slash backslash slash', '/\\/evil.com', REFUSE],
  ['backslash later in the path', '/a/b\\c', REFUSE],
  ['backslash in the query', '/a?b=\\', REFUSE],
  // whitespace and control characters
  ['leading space', ' /x', REFUSE],
  ['trailing space', '/x ', REFUSE],
  ['tab between slashes', '/\t/evil.com', REFUSE],
  ['newline between slashes', '/\n/evil.com', REFUSE],
  ['carriage return between slashes', '/\r/evil.com', REFUSE],
  ['encoded tab', '/%09/evil.com', REFUSE],
  ['encoded newline', '/%0a/evil.com', REFUSE],
  ['encoded carriage return', '/%0D/evil.com', REFUSE],
  ['null byte', '/x\x00', REFUSE],
  ['encoded null byte', '/x%00.html', REFUSE],
  ['DEL', '/x\x7f', REFUSE],
  ['encoded C1 control (NEL)', '/x%C2%85y', REFUSE],
  ['encoded line separator', '/x%E2%80%A8y', REFUSE],
  // CRLF header injection
  ['CRLF injection', '/x\r\nLocation: https://evil.com', REFUSE],
  ['encoded CRLF injection', '/x%0d%0aLocation:%20https://evil.com', REFUSE],
  ['encoded CRLF, set-cookie', '/%0D%0ASet-Cookie:%20a=b', REFUSE],
  ['double-encoded CRLF', '/x%250d%250aLocation:', REFUSE],
  // Unicode lookalikes and non-ASCII
  ['full-width slashes', '／／evil.com', REFUSE],
  ['slash then full-width slash', '/／evil.com', REFUSE],
  ['fraction slash', '/⁄evil.com', REFUSE],
  ['full-width backslash', '/＼evil.com', REFUSE],
  ['division slash', '/∕∕evil.com', REFUSE],
  ['non-ASCII letter', '/café', REFUSE],
  ['ideographic full stop', '/x。com', REFUSE],
  ['zero-width space', '/\u200b/evil.com', REFUSE],
  ['encoded full-width slashes (NFKC → //)', '/%EF%BC%8F%EF%BC%8Fevil.com', REFUSE],
  ['encoded full-width backslash (NFKC → \\)', '/%EF%BC%BCevil.com', REFUSE],
  ['encoded small reverse solidus (NFKC → \\)', '/%EF%B9%A8evil.com', REFUSE],
  // encoded slashes and backslashes
  ['encoded //', '/%2F%2Fevil.com', REFUSE],
  ['encoded //, lower case', '/%2f%2fevil.com', REFUSE],
  ['slash, encoded slash', '/%2f/evil.com', REFUSE],
  ['encoded backslash', '/%5Cevil.com', REFUSE],
  ['encoded backslash, lower case', '/%5cevil.com', REFUSE],
  ['encoded backslash later', '/a/%5c', REFUSE],
  ['double-encoded //', '/%252F%252Fevil.com', REFUSE],
  ['double-encoded backslash', '/%255Cevil.com', REFUSE],
  ['triple-encoded //', '/%25252F%25252Fevil.com', REFUSE],
  ['quadruple-encoded //', '/%2525252F%2525252Fevil.com', REFUSE],
  ['encoded // with a trailing lone %', '/%2F%2Fevil.com%', REFUSE],
  ['still encoded after four rounds', '/%252525252F', REFUSE],
  // dot-segment tricks
  ['dot-dot then //', '/..//evil.com', REFUSE],
  ['dot then //', '/.//evil.com', REFUSE],
  ['dot then backslash', '/./\\evil', REFUSE],
  ['segment, dot-dot, //', '/a/..//evil.com', REFUSE],
  ['encoded dot-dot then //', '/%2e%2e//evil.com', REFUSE],
  ['half-encoded dot-dot, encoded slash', '/.%2e/%2fevil.com', REFUSE],
  ['dot-dot, encoded slash', '/a/../%2fevil.com', REFUSE],
  // relative paths without a leading slash
  ['bare host', 'evil.com', REFUSE],
  ['bare host with path', 'evil.com/x', REFUSE],
  ['dot relative', './x', REFUSE],
  ['dot-dot relative', '../x', REFUSE],
  ['query only', '?x=1', REFUSE],
  ['fragment only', '#x', REFUSE],
  // length and type
  ['empty string', '', REFUSE],
  ['one over the length limit', '/' + 'a'.repeat(MAX_NEXT_URL_LENGTH), REFUSE],
  ['very long', '/' + 'a'.repeat(100_000), REFUSE],
  ['undefined', undefined, REFUSE],
  ['null', null, REFUSE],
  ['number', 1, REFUSE],
  ['NaN', Number.NaN, REFUSE],
  ['boolean', true, REFUSE],
  ['array of a path', ['/x'], REFUSE],
  ['object', { toString: () => '/x' }, REFUSE],
  ['String object', Object('/x'), REFUSE]
]

t.test('checkNextUrl: accepts same-site paths, refuses every bypass family', async (t) => {
  for (const [name, value, accepted] of cases) {
    t.equal(checkNextUrl(value), accepted ? value : null, `${accepted ? 'accept' : 'refuse'}: ${name}`)
  }
})

t.test('whatever it accepts stays on the site, however many times it is decoded', async (t) => {
  const pieces = ['/', '//', '\\', '.', '..', '%2f', '%2F', '%5c', '%25', '%2e', '%09', '%0a', '@', ':', '?', '#',
    'evil.com', 'a', '%EF%BC%8F', '%', ' ', 'https:', '%252f', '%c0%af']
  const base = 'https://good.example/app/page'
  let accepted = 0
  let seed = 42
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  for (let i = 0; i < 5000; i++) {
    let value = '/'
    const n = 1 + random(6)
    for (let j = 0; j < n; j++) value += pieces[random(pieces.length)]
    const result = checkNextUrl(value)
    if (result === null) continue
    accepted++
    t.equal(result, value)
    let form = value
    for (let round = 0; round < 5; round++) {
      const url = new URL(form, base)
      if (url.origin !== 'https://good.example' || url.pathname.startsWith('//')) {
        t.fail(`accepted ${JSON.stringify(value)} leaves the site at decoding round ${round}`)
      }
      try {
        form = decodeURIComponent(form)
      } catch {
        break
      }
    }
  }
  t.ok(accepted > 100, `a fair share of random values are accepted (${accepted})`)
})
