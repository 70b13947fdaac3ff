/**
 * A peer's port-mapped candidate in DirectPath (direct-path.ts): an
 * advertised endpoint on the peer's public address with another port is
 * 'mapped', and two symmetric NATs keep punching (not relay-only) while the
 * peer offers one, so the mapping is probed again every RELAY_REPROBE.
 */
import t from 'tap'
import { DirectPath, type PathIo } from '../../src/control/direct-path.js'
import { seededRandom } from '../../src/random.js'
import { CTL_PUNCH, NAT_WIRE_EDM } from '../../src/wire/control.js'
import { ipToInt } from '../../src/wire/addr.js'
import { RELAY_REPROBE } from '../../src/control/constants.js'

const PUB = { ip: ipToInt('100.64.1.2'), port: 51234 }
const MAPPED = { ip: ipToInt('100.64.1.2'), port: 40000 }

function path (): { p: DirectPath, pings: string[] } {
  const pings: string[] = []
  const io: PathIo = {
    sendProbe: (kind, _txid, ip, port, ttl) => { if (kind === 'ping' && ttl === null) pings.push(`${ip}:${port}`) },
    openSockets: () => [], adoptSocket: () => {}, closeSockets: () => {},
    sendPunch: () => {}, setRoute: () => {},
    localNat: () => 'edm', localCandidates: () => [],
    observed: () => {}, pathLost: () => {}, log: () => {}
  }
  return { p: new DirectPath(io, true, 0, seededRandom(1)), pings }
}

t.test('symmetric ↔ symmetric without a mapping: relay-only', async t => {
  const { p } = path()
  p.setAdvertised(PUB, [{ ip: ipToInt('192.168.2.2'), port: 51234 }], 0)
  p.onPunch({ kind: CTL_PUNCH, natKind: NAT_WIRE_EDM, round: 1, candidates: [PUB], birthday: false }, 0)
  t.equal(p.strategy.strategy, 'relay-only')
  t.equal(p.strategy.reason, 'DOUBLE_SYMMETRIC')
})

t.test('the peer offers its mapping: marked mapped, punching goes on', async t => {
  const { p, pings } = path()
  p.setAdvertised(PUB, [MAPPED, { ip: ipToInt('192.168.2.2'), port: 51234 }], 0)
  p.setSession(true, 0)
  p.onPunch({ kind: CTL_PUNCH, natKind: NAT_WIRE_EDM, round: 1, candidates: [PUB, MAPPED], birthday: false }, 0)
  t.equal(p.candidates.get(MAPPED.ip * 65536 + MAPPED.port)?.kind, 'mapped')
  t.equal(p.candidates.get(PUB.ip * 65536 + PUB.port)?.kind, 'public')
  t.equal(p.strategy.strategy, 'punch')
  for (let now = 0; now <= 6000; now += 50) p.tick(now)
  const before = pings.filter(x => x === `${MAPPED.ip}:${MAPPED.port}`).length
  for (let now = 6000; now <= 6000 + 2 * RELAY_REPROBE; now += 50) p.tick(now)
  const after = pings.filter(x => x === `${MAPPED.ip}:${MAPPED.port}`).length
  t.ok(after - before >= 2, `the mapping probed again while relayed (${after - before} more probes in ${2 * RELAY_REPROBE} ms)`)
})

t.test('a rebinding that looked like a mapping: public once the server sees that port, relay-only again', async t => {
  const { p } = path()
  p.setAdvertised(PUB, [], 0)
  p.onPunch({ kind: CTL_PUNCH, natKind: NAT_WIRE_EDM, round: 1, candidates: [MAPPED], birthday: false }, 0)
  t.equal(p.candidates.get(MAPPED.ip * 65536 + MAPPED.port)?.kind, 'mapped', 'the server still lists the old port')
  p.setAdvertised(MAPPED, [], 10)
  p.onPunch({ kind: CTL_PUNCH, natKind: NAT_WIRE_EDM, round: 2, candidates: [MAPPED], birthday: false }, 10)
  t.equal(p.candidates.get(MAPPED.ip * 65536 + MAPPED.port)?.kind, 'public')
  t.equal(p.strategy.strategy, 'relay-only')
})
