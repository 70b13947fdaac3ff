// The fake-TCP link's nftables rules with the superpacket path (dataplane/faketcp-link.ts,
// faketcp-nft.ts), for real in a throw-away namespace (root, as the e2e tests): a server link opens
// its packet socket and installs both chains (RSTs on output, data segments at prerouting raw), says
// so in status, and removes the table on close; when the prerouting chain cannot be installed (here:
// an `nft` on PATH that refuses it, as a kernel without nft_fib would) the link still opens, keeps
// the RST chain and the packet socket, and says why the data chain is missing.
import t from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { testNetns } from '../helpers/in-netns.js'
import { FakeTcpLink } from '../../src/dataplane/faketcp-link.js'
import { loadNative } from '../../src/dataplane/native.js'
import { silentLogger } from '../../src/log.js'
import { systemClock } from '../../src/clock.js'
import { systemRandom } from '../../src/random.js'

const ns = await testNetns(t, import.meta.url, 'ftl')
if (ns !== null) {
  const native = loadNative()
  const nftList = (): string => execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' })

  t.test('a server link: packet socket, both chains, removed on close', async t => {
    const link = await FakeTcpLink.open(native, { role: 'server', port: 9700, socketBuffer: 1 << 20 }, silentLogger, systemClock, systemRandom)
    try {
      t.ok(link.pktFd >= 0, 'the packet socket is open')
      t.equal(link.fd, link.pktFd, 'the inbound pipeline polls the packet socket')
      const st = link.status() as Record<string, unknown>
      t.equal(st.offload, 'packet')
      t.equal(st.dataRuleOff, undefined, 'no complaint about the data chain')
      const rules = nftList()
      t.match(rules, /hook output priority filter[\s\S]*tcp sport 9700 tcp flags & rst == rst/, 'the RST chain')
      t.match(rules, /hook prerouting priority raw[\s\S]*fib daddr type local tcp dport 9700 tcp flags ! fin,syn,rst ip length > 52/, 'the data chain')
      const c = link.counters()
      t.equal(c.faketcpTxSuperpackets, 0, 'superpacket counters in status (none yet)')
    } finally {
      await link.close()
    }
    t.notMatch(nftList(), /lwt_faketcp_9700/, 'the table is gone after close')
  })

  t.test('without the prerouting chain (nft refuses it) the link opens and says why', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'lwt-nft-'))
    const real = execFileSync('sh', ['-c', 'command -v nft'], { encoding: 'utf8' }).trim()
    writeFileSync(join(dir, 'nft'), `#!/bin/sh\nif [ "$1" = "-f" ]; then s=$(cat); case "$s" in *prerouting*) echo "Error: Could not process rule: No such file or directory" >&2; exit 1;; esac; printf '%s' "$s" | exec ${real} "$@"; fi\nexec ${real} "$@"\n`)
    chmodSync(join(dir, 'nft'), 0o755)
    const path = process.env.PATH
    process.env.PATH = `${dir}:${path ?? ''}`
    t.teardown(() => { process.env.PATH = path; rmSync(dir, { recursive: true, force: true }) })
    const link = await FakeTcpLink.open(native, { role: 'server', port: 9701, socketBuffer: 1 << 20 }, silentLogger, systemClock, systemRandom)
    try {
      const st = link.status() as Record<string, unknown>
      t.equal(st.offload, 'packet', 'the packet socket is still used')
      t.match(String(st.dataRuleOff), /installing the nftables rules/, 'status says why the data chain is missing')
      const rules = nftList()
      t.match(rules, /tcp sport 9701 tcp flags & rst == rst/, 'the RST chain is installed')
      t.notMatch(rules, /tcp dport 9701/, 'the data chain is not')
    } finally {
      await link.close()
    }
    t.notMatch(nftList(), /lwt_faketcp_9701/, 'the table is gone after close')
  })
}
