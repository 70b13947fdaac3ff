# bash completion for lightweight-tunnel.
#
# Install (every user; bash-completion loads it on first use):
#   lightweight-tunnel completion bash | sudo tee /usr/share/bash-completion/completions/lightweight-tunnel
# or for yourself, in ~/.bashrc:
#   source <(lightweight-tunnel completion bash)
#
# Completes the command word, the options of the command typed (server,
# client, status, install-service...), the values of --placement,
# --log-level, -m and help topics, and file names after -c/--config, -g and
# --root. Options are offered with two dashes; one dash works the same.
# Needs only bash (no bash-completion functions).

_lightweight_tunnel() {
  local cur prev cmd i w eq=0
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  # "--opt=value": bash splits at "=" (COMP_WORDBREAKS) into "--opt" "=" "value".
  if [[ $cur == = ]]; then
    cur='' eq=1
  elif [[ $prev == = && $COMP_CWORD -ge 2 ]]; then
    prev=${COMP_WORDS[COMP_CWORD-2]} eq=1
  fi

  local commands='server client status nodes demo help version install-service completion genkey pubkey'
  local topics='server client status nodes demo config version install-service completion'
  local common='--tun --key-file --key --network-name --dev --control --mtu --keepalive --log-level --placement --fast-path --no-fast-path --state-dir --node-key --quiet --verbose --config --help'

  # Values of the option just typed.
  case $prev in
    -c|--config|-config|-g|--genconfig|-genconfig|--node-key|-node-key|--server-key|-server-key|--key-file|-key-file)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0 ;;
    --root|-root|--state-dir|-state-dir)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -d -- "$cur"))
      return 0 ;;
    --placement|-placement)
      COMPREPLY=($(compgen -W 'inline fused split' -- "$cur"))
      return 0 ;;
    --log-level|-log-level)
      COMPREPLY=($(compgen -W 'error warn info debug' -- "$cur"))
      return 0 ;;
    -m|--mode|-mode)
      COMPREPLY=($(compgen -W 'server client' -- "$cur"))
      return 0 ;;
    --p2p|-p2p|--accept-routes|-accept-routes|--client-isolation|-client-isolation)
      ((eq)) && { COMPREPLY=($(compgen -W 'true false' -- "$cur")); return 0; } ;;
    -t|--tun|-tun|-k|--key|-key|--network-name|-network-name|--dev|-dev|-tun-name|--tun-name|--control|-control|--mtu|-mtu|--keepalive|-keepalive|-l|--listen|-listen|-r|--remote|-remote|--max-clients|-max-clients|--advertise-routes|-advertise-routes|-routes|--routes|--approve-routes|-approve-routes|--fec|-fec)
      COMPREPLY=()
      return 0 ;;
  esac

  # The command word: the first word that is not an option or an option's value.
  cmd=''
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      server|client|status|nodes|demo|help|version|install-service|completion|genkey|pubkey) cmd=$w; break ;;
    esac
  done

  local opts
  case $cmd in
    server) opts="$common --listen --max-clients --authorized-nodes --advertise-routes --approve-routes --client-isolation" ;;
    nodes)
      # nodes [remove|allow NODE]: the action word first.
      if [[ $cur != -* && $COMP_CWORD -ge 2 && ${COMP_WORDS[COMP_CWORD-1]} == nodes ]]; then
        COMPREPLY=($(compgen -W 'remove allow' -- "$cur")); return 0
      fi
      opts='--json --control --dev --help' ;;
    client) opts="$common --remote --listen --p2p --no-p2p --port-mapping --no-port-mapping --server-key --fec --advertise-routes --accept-routes --no-accept-routes" ;;
    status) opts='--json --control --dev --help' ;;
    install-service) opts='--config --root --help' ;;
    completion)
      [[ $cur != -* ]] && { COMPREPLY=($(compgen -W 'bash' -- "$cur")); return 0; }
      opts='--help' ;;
    help)
      [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$topics" -- "$cur")); return 0; }
      opts='' ;;
    demo|version|genkey|pubkey) opts='--help' ;;
    '')
      if [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return 0
      fi
      opts="$common --listen --remote --max-clients --authorized-nodes --p2p --no-p2p --fec --port-mapping --no-port-mapping --advertise-routes --approve-routes --accept-routes --no-accept-routes --client-isolation --mode --genconfig --version" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  fi
  return 0
}
complete -F _lightweight_tunnel lightweight-tunnel
