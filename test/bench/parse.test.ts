/**
 * bench/lib/parse.ts: the harness's parsers of iperf3 JSON, ping output and
 * /proc files, fed captured text; percentiles.
 */
import t from 'tap'
import { busyBetween, parseIperfTcp, parseIperfUdp, parsePidStatTicks, parsePingRtts, parseProcStat, parseStatusKb, percentile } from '../../bench/lib/parse.js'

const TCP = JSON.stringify({
  start: { connected: [] },
  end: {
    sum_sent: { start: 0, end: 4, seconds: 4, bytes: 500_000_000, bits_per_second: 1e9, retransmits: 12, sender: true },
    sum_received: { start: 0, end: 4.01, seconds: 4.01, bytes: 499_000_000, bits_per_second: 995_000_000, sender: true }
  }
}, null, 2)

// iperf3 3.12, UDP, -l 64 -b 0, trimmed.
const UDP = JSON.stringify({
  end: {
    sum: { start: 0, end: 1.018319, seconds: 1.018319, bytes: 34421760, bits_per_second: 271459364.5, jitter_ms: 0.0008, lost_packets: 363743, packets: 537840, lost_percent: 67.63, sender: true },
    sum_sent: { start: 0, end: 1.014421, seconds: 1.014421, bytes: 34421760, bits_per_second: 271459364.5, jitter_ms: 0, lost_packets: 0, packets: 537840, lost_percent: 0, sender: true },
    sum_received: { start: 0, end: 1.018319, seconds: 1.018319, bytes: 11141760, bits_per_second: 87530606.8, jitter_ms: 0.0008, lost_packets: 363743, packets: 537833, lost_percent: 67.63, sender: false }
  }
})

const PING = `PING 10.77.0.1 (10.77.0.1) from 10.77.0.2 : 56(84) bytes of data.
64 bytes from 10.77.0.1: icmp_seq=1 ttl=64 time=0.412 ms
64 bytes from 10.77.0.1: icmp_seq=2 ttl=64 time=0.301 ms
64 bytes from 10.77.0.1: icmp_seq=4 ttl=64 time=1.20 ms

--- 10.77.0.1 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 31ms
rtt min/avg/max/mdev = 0.301/0.637/1.200/0.401 ms
`

t.test('percentile interpolates between ranks', async (t) => {
  t.equal(percentile([], 50), null)
  t.equal(percentile([5], 99), 5)
  t.equal(percentile([1, 2, 3, 4], 50), 2.5)
  t.equal(percentile([4, 1, 3, 2], 0), 1, 'unsorted input')
  t.equal(percentile([1, 2, 3, 4], 100), 4)
  t.ok(Math.abs(percentile(Array.from({ length: 101 }, (_, i) => i), 99)! - 99) < 1e-9)
})

t.test('iperf3 TCP: the receiver rate and the sender retransmits', async (t) => {
  const r = parseIperfTcp(TCP)
  t.ok(r.ok)
  if (r.ok) t.same(r.value, { bps: 995_000_000, bytes: 499_000_000, seconds: 4.01, retransmits: 12, meanRttMs: null, maxCwndBytes: null })
  const noisy = parseIperfTcp(`warning: something\n${TCP}`)
  t.ok(noisy.ok, 'text before the JSON is skipped')
  // With the per-stream sender figures (iperf3 3.12 -J, trimmed): mean_rtt in µs, max_snd_cwnd in bytes.
  const withStreams = JSON.parse(TCP) as { end: Record<string, unknown> }
  withStreams.end.streams = [{ sender: { socket: 5, bytes: 500_000_000, max_snd_cwnd: 1_213_440, max_rtt: 5120, min_rtt: 210, mean_rtt: 3873, sender: true } }]
  const s = parseIperfTcp(JSON.stringify(withStreams))
  t.ok(s.ok)
  if (s.ok) {
    t.equal(s.value.meanRttMs, 3.873)
    t.equal(s.value.maxCwndBytes, 1_213_440)
  }
})

t.test('iperf3 errors and non-JSON output are reasons, not throws', async (t) => {
  t.same(parseIperfTcp('{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}'), { ok: false, error: 'iperf3: unable to connect to server: Connection refused' })
  t.same(parseIperfTcp(''), { ok: false, error: 'iperf3 printed no JSON' })
  t.same(parseIperfTcp('{"end": '), { ok: false, error: 'iperf3 printed malformed JSON' })
  t.same(parseIperfTcp('{"end":{}}'), { ok: false, error: 'iperf3 gave no TCP result' })
  t.same(parseIperfUdp('{"end":{}}'), { ok: false, error: 'iperf3 gave no UDP result' })
})

t.test('iperf3 UDP: datagrams received per second from sum_received', async (t) => {
  const r = parseIperfUdp(UDP)
  t.ok(r.ok)
  if (!r.ok) return
  t.ok(Math.abs(r.value.pps - (537833 - 363743) / 1.018319) < 1e-6)
  t.ok(Math.abs(r.value.sentPps - 537840 / 1.014421) < 1e-6)
  t.equal(r.value.lostPct, 67.63)
  // Older iperf3: only "sum" (the server's view).
  const old = JSON.parse(UDP) as { end: Record<string, unknown> }
  delete old.end.sum_received
  delete old.end.sum_sent
  const o = parseIperfUdp(JSON.stringify(old))
  t.ok(o.ok && Math.abs(o.value.pps - (537840 - 363743) / 1.018319) < 1e-6)
})

t.test('ping: per-reply RTTs and the summary counts', async (t) => {
  t.same(parsePingRtts(PING), { rtts: [0.412, 0.301, 1.2], transmitted: 4, received: 3 })
  t.same(parsePingRtts('garbage'), { rtts: [], transmitted: 0, received: 0 })
  t.same(parsePingRtts('64 bytes from x: icmp_seq=1 ttl=64 time<1 ms\n1 packets transmitted, 1 received, 0% packet loss'), { rtts: [1], transmitted: 1, received: 1 })
})

t.test('/proc/stat: total and idle jiffies, busy share between samples', async (t) => {
  const a = parseProcStat('cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n')
  const b = parseProcStat('cpu  150 0 150 900 0 0 0 0 0 0\n')
  t.same(a, { total: 1000, idle: 800 })
  t.same(b, { total: 1200, idle: 900 })
  t.equal(busyBetween(a!, b!), 0.5)
  t.equal(busyBetween(a!, a!), 0, 'no time passed')
  t.equal(parseProcStat('nothing here'), null)
})

t.test('/proc/PID/stat: utime + stime after a name with spaces and parentheses', async (t) => {
  const line = '1234 (node (worker) x) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 11 0 100 1000000 5000 18446744073709551615'
  t.equal(parsePidStatTicks(line), 325)
  t.equal(parsePidStatTicks('no parenthesis'), null)
})

t.test('/proc/PID/status fields in kB', async (t) => {
  const s = 'Name:\tnode\nVmPeak:\t  900000 kB\nVmHWM:\t   91236 kB\nVmRSS:\t   80000 kB\n'
  t.equal(parseStatusKb(s, 'VmHWM'), 91236)
  t.equal(parseStatusKb(s, 'VmRSS'), 80000)
  t.equal(parseStatusKb(s, 'VmSwap'), null)
})
