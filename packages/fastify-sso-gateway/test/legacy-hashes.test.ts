import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { OWASP_MINIMUM, PasswordHasher } from '../src/passwords.js'
import { Browser, buildApp } from './helpers.js'

interface Fixture { password: string, hash: string }
const fixtures = JSON.parse(readFileSync(new URL('./fixtures/legacy-argon2.json', import.meta.url), 'utf8')) as Record<'owasp' | 'stronger', Fixture>

t.test('hashes made by the old `argon2` package still verify with @node-rs/argon2', async (t) => {
  const hasher = new PasswordHasher(OWASP_MINIMUM)
  t.same(await hasher.verify(fixtures.owasp.hash, fixtures.owasp.password), { ok: true, rehash: false }, 'same parameters: no rehash, although the PHC string orders them m,p,t')
  t.same(await hasher.verify(fixtures.owasp.hash, fixtures.owasp.password + ' '), { ok: false, rehash: false })
  t.same(await hasher.verify(fixtures.stronger.hash, fixtures.stronger.password), { ok: true, rehash: true }, 'non-ASCII password; other parameters: rehash')
  t.same(await hasher.verify(fixtures.stronger.hash, 'Tr0ub4dor&3'), { ok: false, rehash: false })
  const stronger = new PasswordHasher({ memoryCost: 65536, timeCost: 3, parallelism: 4 })
  t.same(await stronger.verify(fixtures.stronger.hash, fixtures.stronger.password), { ok: true, rehash: false })
  t.match(await hasher.hash('x'), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'new hashes are argon2id v19 PHC strings')
})

t.test('a user stored by the old library signs in through the form, and the hash is kept', async (t) => {
  const file = join(t.testdir({}), 'gateway.sqlite')
  const first = await buildApp({ database: file })
  await first.app.ssoGateway.createUser({ username: 'alice', password: 'a placeholder password' })
  await first.app.close()
  const db = new Database(file)
  db.prepare("UPDATE users SET password_hash = ? WHERE username = 'alice'").run(fixtures.owasp.hash)
  db.close()

  const { app } = await buildApp({ database: file })
  t.teardown(() => app.close())
  const browser = new Browser(app)
  const form = await browser.request('GET', '/login/')
  const res = await browser.request('POST', '/login/', { username: 'alice', password: fixtures.owasp.password, _csrf: Browser.csrf(form.body) })
  t.equal(res.statusCode, 303, 'signed in with the legacy hash')
  await app.close()
  const check = new Database(file, { readonly: true })
  t.equal((check.prepare("SELECT password_hash AS h FROM users WHERE username = 'alice'").get() as { h: string }).h, fixtures.owasp.hash, 'same parameters: not rewritten')
  check.close()
})
