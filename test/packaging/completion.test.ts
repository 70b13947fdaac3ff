// packaging/completion/lightweight-tunnel.bash in a real bash: the function
// is driven through COMP_WORDS/COMP_CWORD as bash's completion would, and
// `complete -p` shows it registered for the command.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('../../packaging/completion/lightweight-tunnel.bash', import.meta.url))

/** The completions bash offers for `words` (the last one is being completed), run in `cwd`. */
function complete (words: string[], cwd = process.cwd()): string[] {
  const quoted = words.map(w => `'${w.replace(/'/g, "'\\''")}'`).join(' ')
  const out = execFileSync('bash', ['--norc', '--noprofile', '-c',
    `source '${SCRIPT}'; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _lightweight_tunnel; printf '%s\\n' "\${COMPREPLY[@]}"`],
  { encoding: 'utf8', cwd })
  return out.split('\n').filter(Boolean).sort()
}

const cases: Array<[string, string[], string[]]> = [
  ['commands', ['lightweight-tunnel', ''], ['client', 'completion', 'demo', 'genkey', 'help', 'install-service', 'nodes', 'pubkey', 'server', 'status', 'version']],
  ['key commands', ['lightweight-tunnel', 'g'], ['genkey']],
  ['--state-dir takes a folder', ['lightweight-tunnel', 'client', '--state-d'], ['--state-dir']],
  ['client key options', ['lightweight-tunnel', 'client', '--se'], ['--server-key']],
  ['no --server-key on the server', ['lightweight-tunnel', 'server', '--se'], []],
  ['a command prefix', ['lightweight-tunnel', 'st'], ['status']],
  ['status options', ['lightweight-tunnel', 'status', '--'], ['--control', '--dev', '--help', '--json']],
  ['server-only options', ['lightweight-tunnel', 'server', '--m'], ['--max-clients', '--mtu']],
  ['client-only options', ['lightweight-tunnel', 'client', '--re'], ['--remote']],
  ['no client option on the server', ['lightweight-tunnel', 'server', '--re'], []],
  ['--placement values', ['lightweight-tunnel', 'server', '--placement', ''], ['fused', 'inline', 'split']],
  ['--placement=VALUE', ['lightweight-tunnel', 'client', '--placement', '=', 'sp'], ['split']],
  ['--log-level values', ['lightweight-tunnel', 'client', '--log-level', 'd'], ['debug']],
  ['help topics', ['lightweight-tunnel', 'help', 'c'], ['client', 'completion', 'config']],
  ['completion shells', ['lightweight-tunnel', 'completion', ''], ['bash']],
  ['install-service options', ['lightweight-tunnel', 'install-service', 'office', '--'], ['--config', '--help', '--root']],
  ['nodes actions', ['lightweight-tunnel', 'nodes', ''], ['allow', 'remove']],
  ['nodes options', ['lightweight-tunnel', 'nodes', '--'], ['--control', '--dev', '--help', '--json']],
  ['--authorized-nodes on the server', ['lightweight-tunnel', 'server', '--auth'], ['--authorized-nodes']],
  ['no value suggested for --tun', ['lightweight-tunnel', 'client', '--tun', ''], []],
  // bash splits an IPv6 address at its colons (COMP_WORDBREAKS): nothing is offered inside it either.
  ['nothing inside an IPv6 --tun address', ['lightweight-tunnel', 'client', '--tun', '10.0.0.2/24,fd00', ':', 'c'], []]
]
for (const [name, words, want] of cases) {
  t.test(name, async t => { t.same(complete(words), want) })
}

t.test('files after -c', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-comp-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'office.json'), '{}')
  writeFileSync(join(dir, 'other.txt'), '')
  t.same(complete(['lightweight-tunnel', '-c', 'of'], dir), ['office.json'])
  t.same(complete(['lightweight-tunnel', 'install-service', 'x', '--config', 'o'], dir), ['office.json', 'other.txt'])
})

t.test('registered for the command', async t => {
  const out = execFileSync('bash', ['--norc', '--noprofile', '-c', `source '${SCRIPT}'; complete -p lightweight-tunnel`], { encoding: 'utf8' })
  t.equal(out.trim(), 'complete -F _lightweight_tunnel lightweight-tunnel')
})
