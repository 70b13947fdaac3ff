/**
 * `lightweight-tunnel nodes`: argv → the nodes command (list, remove NODE,
 * allow NODE; usage errors name the expected form), the control requests,
 * and the table a person reads (every node's fingerprint, key, address,
 * live, first/last seen; revoked keys; strict mode named).
 */
import t from 'tap'
import { parseCommand, UsageError } from '../../src/cli/args.js'
import { formatNodes, formatNodesChange, nodesRequest } from '../../src/cli/nodes.js'
import type { NodesReport } from '../../src/control/nodes.js'

const ENV = { netnsId: '4026531840', cwd: '/srv/lwt' }

function problemsOf (argv: string[]): string[] {
  try { parseCommand(argv, ENV) } catch (err) { if (err instanceof UsageError) return [...err.problems]; throw err }
  throw new Error('no usage error')
}

t.test('parse', async t => {
  t.same(parseCommand(['nodes'], ENV), { kind: 'nodes', action: 'list', node: null, json: false, control: null })
  t.same(parseCommand(['nodes', '--json', '--dev', 'lwt3'], ENV), { kind: 'nodes', action: 'list', node: null, json: true, control: '/run/lightweight-tunnel/lwt3.4026531840.sock' })
  t.same(parseCommand(['nodes', 'remove', '10.0.0.3'], ENV), { kind: 'nodes', action: 'remove', node: '10.0.0.3', json: false, control: null })
  t.same(parseCommand(['nodes', 'allow', 'SHA256:abc', '--control', '/tmp/x.sock'], ENV), { kind: 'nodes', action: 'allow', node: 'SHA256:abc', json: false, control: '/tmp/x.sock' })
  t.match(problemsOf(['nodes', 'delete', '10.0.0.3']), [/nodes: unknown action "delete": expected "nodes" \(list\), "nodes remove NODE" or "nodes allow NODE"/])
  t.match(problemsOf(['nodes', 'remove']), [/nodes remove: expected the node: its tunnel address/])
  t.match(problemsOf(['nodes', 'remove', '10.0.0.3', 'extra']), [/nodes: unexpected argument "extra"/])
  t.match(problemsOf(['nodes', '--mtu', '1300']), [/--mtu: not an option of nodes/])
})

t.test('requests', async t => {
  t.same(nodesRequest('list', null), { cmd: 'nodes' })
  t.same(nodesRequest('remove', '10.0.0.3'), { cmd: 'nodes-remove', node: '10.0.0.3' })
  t.same(nodesRequest('allow', 'k'), { cmd: 'nodes-allow', node: 'k' })
})

const REPORT: NodesReport = {
  nodes: [
    { fingerprint: 'SHA256:' + 'a'.repeat(43), key: 'A'.repeat(43) + '=', address: '10.0.0.2', live: true, endpoint: '198.51.100.7:41000', firstSeen: '2026-12-05T09:52:01.123Z', lastSeen: '2026-12-05T10:31:12.000Z', authorized: null },
    { fingerprint: 'SHA256:' + 'b'.repeat(43), key: 'B'.repeat(43) + '=', address: '10.0.0.3', live: false, endpoint: null, firstSeen: '2026-12-05T09:53:00.000Z', lastSeen: '2026-12-05T09:58:00.000Z', authorized: null }
  ],
  revoked: [{ fingerprint: 'SHA256:' + 'c'.repeat(43), key: 'C'.repeat(43) + '=', at: '2026-12-05T10:02:44.000Z' }],
  authorizedNodes: null
}

t.test('the table', async t => {
  const out = formatNodes(REPORT)
  t.match(out, /^open registration:/)
  t.match(out, /ADDRESS\s+FINGERPRINT\s+LIVE\s+ENDPOINT\s+FIRST SEEN\s+LAST SEEN\n/)
  t.match(out, /10\.0\.0\.2\s+SHA256:a{43}\s+yes\s+198\.51\.100\.7:41000\s+2026-12-05 09:52:01Z\s+2026-12-05 10:31:12Z\n/)
  t.match(out, /10\.0\.0\.3\s+SHA256:b{43}\s+no\s+-\s+/)
  t.match(out, /keys:\n {2}10\.0\.0\.2\s+A{43}=\n/, 'full keys listed')
  t.match(out, /revoked keys .*\n {2}SHA256:c{43} {2}C{43}= {2}revoked 2026-12-05 10:02:44Z\n/)
  const strict = formatNodes({ ...REPORT, authorizedNodes: '/etc/lwt/nodes', nodes: [{ ...REPORT.nodes[0]!, authorized: false }] })
  t.match(strict, /^strict mode: only the nodes listed in \/etc\/lwt\/nodes are admitted/)
  t.match(strict, /LISTED\n[^\n]*NO\n/)
  t.match(formatNodes({ nodes: [], revoked: [], authorizedNodes: null }), /no node has registered yet/)
  t.notMatch(formatNodes({ ...REPORT, nodes: [{ ...REPORT.nodes[0]!, endpoint: 'x\u001b[2Jy' }] }), /\u001b/, 'control characters from the daemon are not printed')
})

t.test('the table with IPv6 addresses: an IPV6 column', async t => {
  const out = formatNodes({ ...REPORT, nodes: [{ ...REPORT.nodes[0]!, address6: 'fd00:77::2' }, { ...REPORT.nodes[1]!, address6: null }] })
  t.match(out, /ADDRESS\s+IPV6\s+FINGERPRINT/)
  t.match(out, /10\.0\.0\.2\s+fd00:77::2\s+SHA256:a{43}/)
  t.match(out, /10\.0\.0\.3\s+-\s+SHA256:b{43}/)
  t.notMatch(formatNodes(REPORT), /IPV6/, 'no column without IPv6')
})

t.test('what a change says', async t => {
  t.equal(formatNodesChange('remove', { nodes: [REPORT.nodes[0]!], revoked: [{ ...REPORT.revoked[0]!, key: REPORT.nodes[0]!.key }], allowed: [], disconnected: 1 }),
    `removed 10.0.0.2 (SHA256:${'a'.repeat(43)}): the address is free, the key is refused from now on\n1 live node disconnected; its peers drop their sessions with it\n`)
  t.match(formatNodesChange('remove', { nodes: [], revoked: [REPORT.revoked[0]!], allowed: [], disconnected: 0 }), /revoked the key SHA256:c{43} \(it holds no address\)\nno live session was affected/)
  t.match(formatNodesChange('allow', { nodes: [], revoked: [], allowed: [REPORT.revoked[0]!], disconnected: 0 }), /allowed the key SHA256:c{43} again/)
})
