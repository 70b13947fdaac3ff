/**
 * Lab ids (src/lab/topology.ts newLabId): unique within a process, and the
 * owner's pid readable back from a namespace name (netns.ts labOwnerPid).
 * Needs no root: nothing is created.
 */
import t from 'tap'
import { newLabId } from '../../src/lab/topology.js'
import { LAB_PREFIX, labOwnerPid } from '../../src/lab/netns.js'

t.test('1,296 ids drawn in a row by one process are all different', async t => {
  // Two random chars, as before, repeated an id within ~45 draws on average:
  // a lab built while another of the same process was up then shared its names.
  const ids = Array.from({ length: 36 * 36 }, () => newLabId())
  t.equal(new Set(ids).size, ids.length)
  t.ok(ids.every((id) => /^[0-9a-z]{7}$/.test(id)), 'seven chars of [0-9a-z]')
})

t.test('the owner pid reads back from a namespace named after the id', async t => {
  const id = newLabId()
  t.equal(labOwnerPid(`${LAB_PREFIX}${id}-srv`), process.pid)
})
