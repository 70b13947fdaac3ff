// --transport, --no-tcp, --tcp-listen (transport/): accepted forms and every usage error.
import t from 'tap'
import { parseCommand, UsageError } from '../../src/cli/args.js'

const ENV = { netnsId: '4026531840', cwd: '/srv/lwt', lwtKey: null }
const SERVER = ['server', '--tun', '10.0.0.1/24', '--key', 'correct horse battery']
const CLIENT = ['client', '--remote', '203.0.113.5:9000', '--tun', '10.0.0.2/24', '--key', 'correct horse battery']

function config (argv: string[]): Record<string, unknown> {
  const cmd = parseCommand(argv, ENV)
  if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}`)
  return cmd.config as unknown as Record<string, unknown>
}

function problems (argv: string[]): string {
  try { parseCommand(argv, ENV) } catch (err) { if (err instanceof UsageError) return err.problems.join('\n'); throw err }
  throw new Error(`expected a usage error for ${argv.join(' ')}`)
}

t.test('defaults: auto on a client, TCP on the UDP port on a server', async t => {
  t.equal(config(CLIENT).transport, 'auto')
  t.equal(config(SERVER).tcp, true)
  t.equal(config(SERVER).tcpListen, null)
})

t.test('accepted forms', async t => {
  for (const v of ['auto', 'udp', 'tcp']) t.equal(config([...CLIENT, '--transport', v]).transport, v)
  t.equal(config([...SERVER, '--no-tcp']).tcp, false)
  t.same(config([...SERVER, '--tcp-listen', '0.0.0.0:443']).tcpListen, { host: '0.0.0.0', port: 443 })
  t.same(config([...SERVER, '--tcp-listen', '443']).tcpListen, { host: '0.0.0.0', port: 443 }, 'a bare port')
})

t.test('usage errors name the cause and the remedy', async t => {
  t.match(problems([...CLIENT, '--transport', 'quic']), /expected one of auto, udp, tcp, faketcp, got "quic"/)
  t.match(problems([...SERVER, '--transport', 'tcp']), /only for client mode, but this is a server .*--no-tcp/)
  t.match(problems([...CLIENT, '--no-tcp']), /only for server mode, but this is a client .*--transport/)
  t.match(problems([...CLIENT, '--tcp-listen', '443']), /only for server mode/)
  t.match(problems([...SERVER, '--no-tcp', '--tcp-listen', '443']), /conflict: --tcp-listen moves the TCP listener, --no-tcp turns it off/)
  t.match(problems([...SERVER, '--tcp-listen', '0.0.0.0:99999']), /--tcp-listen takes HOST:PORT/)
})
