import t from 'tap'
import { logText, USERNAME_LOG_SERIALIZERS } from '../src/index.js'

t.test('log text: NEL, LS and PS are escaped; other values pass through the serializers', async (t) => {
  t.equal(logText('a\u0085b\u2028c\u2029d'), 'a\\u0085b\\u2028c\\u2029d')
  t.equal(logText('plain alice@example.com'), 'plain alice@example.com')
  t.equal(USERNAME_LOG_SERIALIZERS.user('x\u2028'), 'x\\u2028')
  t.equal(USERNAME_LOG_SERIALIZERS.oldUsername(null), null, 'not a string: as it is')
  t.equal(USERNAME_LOG_SERIALIZERS.user(undefined), undefined)
})
