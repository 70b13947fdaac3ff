import t from 'tap'
import { VpnError } from '../src/errors.js'
t.test('errors carry codes', async t => {
  const e = new VpnError('ERR_USAGE', 'x')
  t.equal(e.code, 'ERR_USAGE')
})
