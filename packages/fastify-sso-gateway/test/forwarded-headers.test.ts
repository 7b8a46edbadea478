import t from 'tap'
import { Browser, buildApp, seed } from './helpers.js'

/** Password POSTs from one socket, each claiming another client address in X-Forwarded-For. */
async function spoofedAttempts (trustProxy: boolean): Promise<number[]> {
  const { app, agent } = await buildApp({ loginRateLimit: { max: 3, timeWindow: 60_000 } }, { trustProxy })
  try {
    await seed(app, agent)
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const browser = new Browser(app, { 'x-forwarded-for': `198.51.100.${i + 1}` })
      const form = await browser.request('GET', '/login/')
      // A different username each time: only the per-IP budget is in play.
      const res = await browser.request('POST', '/login/', { username: `user${i}`, password: 'wrong', _csrf: Browser.csrf(form.body) })
      statuses.push(res.statusCode)
    }
    return statuses
  } finally {
    await app.close()
  }
}

t.test('X-Forwarded-For is ignored unless the app trusts a proxy: spoofing it does not escape the per-IP limit', async (t) => {
  t.same(await spoofedAttempts(false), [401, 401, 401, 429, 429], 'one socket address, one budget')
})

t.test('behind a trusted proxy, each forwarded client address has its own budget', async (t) => {
  t.same(await spoofedAttempts(true), [401, 401, 401, 401, 401])
})
