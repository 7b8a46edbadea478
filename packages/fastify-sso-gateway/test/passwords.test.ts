import Database from 'better-sqlite3'
import { join } from 'node:path'
import t from 'tap'
import { PasswordHasher, OWASP_MINIMUM } from '../src/passwords.js'
import { Browser, buildApp, PASSWORD } from './helpers.js'

t.test('passwords are argon2id PHC strings at OWASP parameters, rehashed when the parameters rise', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const stored = () => {
    const db = new Database(file, { readonly: true })
    try {
      return (db.prepare("SELECT password_hash AS h FROM users WHERE username = 'alice'").get() as { h: string }).h
    } finally {
      db.close()
    }
  }
  const first = await buildApp({ database: file })
  await first.app.ssoGateway.createUser({ username: 'alice', password: PASSWORD })
  await first.app.close()
  t.match(stored(), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  t.notMatch(stored(), PASSWORD)

  const second = await buildApp({ database: file, passwordHash: { timeCost: 3 } })
  t.teardown(() => second.app.close())
  const browser = new Browser(second.app)
  const form = await browser.request('GET', '/login/')
  const wrong = await browser.request('POST', '/login/', { username: 'alice', password: 'wrong', _csrf: Browser.csrf(form.body) })
  t.equal(wrong.statusCode, 401)
  t.match(stored(), /t=2/, 'a failed sign-in rehashes nothing')
  const ok = await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(wrong.body) })
  t.equal(ok.statusCode, 303)
  t.match(stored(), /^\$argon2id\$v=19\$m=19456,t=3,p=1\$/, 'rehashed with the new parameters')
  await browser.request('POST', '/logout/', { _csrf: Browser.csrf((await browser.request('GET', '/logout/')).body) })
  const again = await browser.request('GET', '/login/')
  t.equal((await browser.request('POST', '/login/', { username: 'alice', password: PASSWORD, _csrf: Browser.csrf(again.body) })).statusCode, 303, 'the new hash works')
})

t.test('the hasher: unknown users checked against a dummy, no truncation, garbage hashes refused', async (t) => {
  const hasher = new PasswordHasher(OWASP_MINIMUM)
  const hash = await hasher.hash('x'.repeat(200))
  t.same(await hasher.verify(hash, 'x'.repeat(200)), { ok: true, rehash: false })
  t.same(await hasher.verify(hash, 'x'.repeat(199)), { ok: false, rehash: false }, 'no truncation: one character short fails')
  t.same(await hasher.verify(hash, 'x'.repeat(200) + 'y'), { ok: false, rehash: false }, 'no truncation: one character more fails')
  t.same(await hasher.verify(null, 'anything'), { ok: false, rehash: false })
  t.same(await hasher.verify(null, 'dummy password for unknown users'), { ok: false, rehash: false }, 'even the dummy\'s own password')
  t.same(await hasher.verify('not a hash', 'x'), { ok: false, rehash: false })
  t.same(await hasher.verify(hash, 'x'.repeat(1025)), { ok: false, rehash: false }, 'overlong: refused without hashing')

  // An unknown user takes about as long as a wrong password.
  const time = async (h: string | null) => { const s = process.hrtime.bigint(); await hasher.verify(h, 'guess'); return Number(process.hrtime.bigint() - s) / 1e6 }
  await time(null)
  const unknown = (await time(null) + await time(null) + await time(null)) / 3
  const wrong = (await time(hash) + await time(hash) + await time(hash)) / 3
  t.ok(unknown > wrong / 3 && unknown < wrong * 3, `unknown ${unknown.toFixed(1)} ms vs wrong ${wrong.toFixed(1)} ms`)
})

t.test('with one slot, concurrent hashes queue and every one completes, in order', async (t) => {
  const hasher = new PasswordHasher(OWASP_MINIMUM, 1)
  const started: number[] = []
  const done: number[] = []
  const work = [0, 1, 2].map(async (i) => {
    started.push(i)
    const hash = await hasher.hash(`password-${i}`)
    done.push(i)
    return hash
  })
  const hashes = await Promise.all(work)
  t.same(done, [0, 1, 2], 'one at a time, in order')
  t.equal(new Set(hashes).size, 3)
  t.match(await hasher.verify(hashes[1]!, 'password-1'), { ok: true })
  t.match(await hasher.verify(null, 'x'), { ok: false })
})
