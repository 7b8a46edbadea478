// The gateway unreachable from a service during /login/ or /sso/accept/: the service answers
// 503 with a retry link, starts no half-made session, and never crashes on an unhandled
// rejection. Real gateway and service-a processes.
import t from 'tap'
import { tempDir } from '../helpers/temp.js'
import { startFleet } from '../../scripts/fleet.mjs'
import { HttpBrowser } from '../helpers/http-browser.js'

const PASSWORD = 'faults-password-5'

t.test('gateway unreachable during /login/ and /sso/accept/', async (t) => {
  const fleet = await startFleet({
    dataDir: tempDir('sso-faults-unreachable-'), password: PASSWORD, apps: ['gateway', 'service-a']
  })
  t.teardown(fleet.stop)
  const { urls } = fleet
  const serviceA = () => fleet.procs['service-a']!
  const retryLink = (body: string): string => /<a [^>]*href="([^"]+)"[^>]*>Try again<\/a>/.exec(body)?.[1]?.replace(/&amp;/g, '&') ?? ''

  await t.test('/login/ with the gateway down: 503, a retry link, no session', async (t) => {
    await fleet.stopApp('gateway')
    const browser = new HttpBrowser()
    const page = await browser.send('GET', `${urls.a}/login/?next=/private`)
    t.equal(page.status, 503)
    t.match(page.body, /Sign-in unavailable/)
    t.match(page.body, /The sign-in service is unavailable: the gateway could not be reached/)
    t.equal(retryLink(page.body), '/login/?next=%2Fprivate', 'a link that starts the sign-in again')
    t.equal(page.headers['set-cookie'], undefined, 'no session cookie')
    t.match((await browser.send('GET', `${urls.a}/`)).body, /Not signed in/)
    const guarded = await browser.go('GET', `${urls.a}/private`)
    t.equal(guarded.status, 503, 'a protected page sends the browser to /login/, which explains the same')
    t.equal(guarded.url, `${urls.a}/login/?next=%2Fprivate`)

    await fleet.start('gateway')
    const retried = await browser.go('GET', new URL(retryLink(page.body), urls.a).href)
    t.ok(retried.url.startsWith(`${urls.gateway}/login/?sso=`), 'the retry link works once the gateway is back')
  })

  await t.test('/login/ with the gateway hanging: 503 after the service\'s request timeout', async (t) => {
    const pid = fleet.procs.gateway!.pid!
    process.kill(pid, 'SIGSTOP')
    t.teardown(() => { process.kill(pid, 'SIGCONT') })
    const started = Date.now()
    const page = await new HttpBrowser().send('GET', `${urls.a}/login/?next=/private`)
    const ms = Date.now() - started
    process.kill(pid, 'SIGCONT')
    t.equal(page.status, 503)
    t.ok(ms >= 4500 && ms < 8000, `answered after ${ms} ms (request timeout 5000 ms)`)
    t.equal(retryLink(page.body), '/login/?next=%2Fprivate')
  })

  await t.test('/sso/accept/ with the gateway down: 503, a retry link, no half-made session', async (t) => {
    const browser = new HttpBrowser()
    const form = await browser.go('GET', `${urls.a}/private`)
    t.ok(form.url.startsWith(`${urls.gateway}/login/?sso=`))
    const signedIn = await browser.send('POST', form.url, { username: 'alice', password: PASSWORD, _csrf: HttpBrowser.csrf(form.body) })
    t.equal(signedIn.status, 303)
    const accept = String(signedIn.headers.location)
    t.ok(accept.startsWith(`${urls.a}/sso/accept/?code=`), 'back to A with the browser code')

    await fleet.stopApp('gateway')
    const page = await browser.send('GET', accept)
    t.equal(page.status, 503)
    t.match(page.body, /Sign-in unavailable/)
    t.equal(retryLink(page.body), '/login/?next=%2Fprivate')
    t.match((await browser.send('GET', `${urls.a}/`)).body, /Not signed in/, 'not signed in at A')
    const again = await browser.send('GET', accept)
    t.equal(again.status, 400, 'the sign-in attempt is over: accept cannot be replayed')

    await fleet.start('gateway')
    const landed = await browser.go('GET', new URL(retryLink(page.body), urls.a).href)
    t.equal(landed.url, `${urls.a}/private`, 'the retry signs in (silently: the gateway session survived its restart)')
    t.match(landed.body, /Signed in as <strong>alice<\/strong>/)
  })

  t.equal(serviceA().exitCode, null, 'service-a never crashed')
  t.notMatch(serviceA().output ?? '', /unhandled|uncaught/i, 'no unhandled rejection or exception logged')
})
