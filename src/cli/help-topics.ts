/**
 * The command pages of the help: `help COMMAND` and `COMMAND --help`, one
 * page per command (server, client, status, ping, netcheck, nodes, check,
 * metrics, demo, version, install-service, completion). The manual page
 * itself (`--help`: options, configuration file, files, signals, examples)
 * is cli/help.ts, which looks pages up here. Defaults come from
 * config/defaults.ts, as there.
 */
import { formatHostPort } from '../config/validate.js'
import { CONTROL_DIR, DEFAULTS } from '../config/defaults.js'

const D = DEFAULTS
/** The control socket's path, as every page writes it. */
export const SOCK = `${CONTROL_DIR}/<dev>.<netns-id>.sock`

const SERVER = `lightweight-tunnel server - run the server

SYNOPSIS
    lightweight-tunnel server --tun CIDR --key-file FILE [--listen HOST:PORT]
        [--max-clients N] [--advertise-routes CIDR,...]
        [--approve-routes all|NODE=CIDR+...,...] [--client-isolation]
        [--tcp-listen HOST:PORT | --no-tcp]
        [--dev NAME] [--control PATH] [--mtu N] [--mss-clamp]
        [--keepalive SECONDS] [--placement inline|fused|split]
        [--no-fast-path] [--log-level LEVEL | -q | --verbose]
        [--log-format text|json] [-c FILE]

    The server is the hub every client registers with. It listens on UDP
    --listen (default ${formatHostPort(D.serverListen.host, D.serverListen.port)}: IPv4 and IPv6), owns a
    tunnel address like every node, introduces clients to each other for
    direct paths, and relays sealed packets between clients that cannot
    reach each other directly.
    Clients beyond --max-clients (default ${D.maxClients}) are refused.
    It accepts the tunnel over TCP too, on the same port number
    (--tcp-listen moves it, --no-tcp turns it off).
    --remote and --p2p are client options and an error here.

    See "lightweight-tunnel help" for every option, files and exit status.
`

const CLIENT = `lightweight-tunnel client - run a client

SYNOPSIS
    lightweight-tunnel client --remote HOST:PORT --tun CIDR --key-file FILE
        [--transport auto|udp|tcp] [--p2p | --no-p2p] [--no-port-mapping]
        [--advertise-routes CIDR,...]
        [--no-accept-routes] [--listen HOST:PORT] [--dev NAME] [--control PATH]
        [--mtu N] [--mss-clamp] [--fec DATA,PARITY] [--keepalive SECONDS]
        [--placement inline|fused|split]
        [--no-fast-path] [--log-level LEVEL | -q | --verbose]
        [--log-format text|json] [-c FILE]

    The client registers with the server at --remote using the key, then
    reaches every other node's tunnel address. With --p2p (the default) it
    tries a direct UDP path to each client it talks to and falls back to the
    server's relay while none works; --no-p2p always uses the relay. It also
    asks its router for a UDP port mapping (PCP, NAT-PMP, UPnP IGD) and
    offers the mapped address to peers; --no-port-mapping does not ask.
    When UDP to the server gets no answer in 2 s it tries TCP too
    (--transport auto) and returns to UDP when UDP answers again. A wrong
    key is reported as such ("the server rejected our key"), also by status.
    --max-clients is a server option and an error here.

    See "lightweight-tunnel help" for every option, files and exit status.
`

const STATUS = `lightweight-tunnel status - show a running daemon's state

SYNOPSIS
    lightweight-tunnel status [--json] [--all | --control PATH | --dev NAME |
        -c FILE]

    Connects to the daemon's control socket and prints a header (mode,
    device, tunnel address, state, any problem, uptime; on a client the port
    mapping: protocol, external endpoint, lifetime left, or why there is
    none) and one row per peer:
    TUNNEL IP, ROLE, PATH (direct, relay, connecting), ENDPOINT, RTT, TX, RX,
    SESSION, LAST SEEN and NOTE (why the path is what it is). With IPv6
    tunnel addresses the header shows both and an IPV6 column follows TUNNEL
    IP (--json: "tunnel6" on the report and on each peer). --json prints
    the report as JSON instead.

    RTT is the lowest of the last 5 control round trips on the peer's path
    (keepalives, path probes; the server pings each client every 30 s): a
    busy host only adds delay to a sample. LAST SEEN counts every
    authenticated packet, data included. A client whose server has not
    answered for 2 keepalives + 1 s shows state "unresponsive" and a PROBLEM
    line saying since when; it registers again after 3 keepalives (at least
    15 s).

    Which daemon: --control PATH; --dev NAME (its socket
    ${SOCK}
    in the current network namespace); -c FILE (the daemon running that
    config file: its "control", else its "dev"). Without any of them, every
    daemon of the current network namespace: one is shown alone, several one
    after another, each under a "==> SOCKET <==" line (--json: an array of
    {control, report} or {control, error}). --all: every daemon on the host,
    in every namespace, like wg show. Exit status 3 when no daemon is found;
    1 when one of several did not answer.
`

const PING = `lightweight-tunnel ping - ping a peer through its daemon

SYNOPSIS
    lightweight-tunnel ping [-c COUNT] [-i SECONDS] [-W SECONDS] [--json]
        [--control PATH | --dev NAME] PEER

    Asks the running daemon to send an authenticated Ping to PEER (a tunnel
    address: the server, or another client) on its current path, and prints
    each answer like tailscale ping:
        pong from 10.0.0.3 via 198.51.100.9:41000 (direct) in 0.45 ms
        no answer from 10.0.0.3 via 198.51.100.1:9000 (relay) within 2 s
    "direct" went straight to the peer's endpoint; "relay" through the
    server. The round trip is the daemon's (send to Pong read), so it
    includes both daemons waking up; ping(8) through the tunnel measures the
    packet path alone. A summary line ends the output.

    -c, --count COUNT  pings to send, 1..100000 (default 4). Here -c is the
                       count, as in ping(8), not a config file.
    -i, --interval S   seconds from one ping to the next, 0.2 or more
                       (default 1).
    -W, --timeout S    seconds to wait for each answer, 0.1..8 (default 2).
    --json             one JSON object per answer: peer, path, endpoint,
                       rttMs (null: no answer).
    --control PATH, --dev NAME
                       which daemon (default: the one in this network
                       namespace; with several, say which).

    Exit status 0 when any answer came, 1 when none did (or the peer is
    unknown, or has no session yet), 2 usage, 3 no daemon.
`

const NETCHECK = `lightweight-tunnel netcheck - what the client knows about its network

SYNOPSIS
    lightweight-tunnel netcheck [--json] [--control PATH | --dev NAME]

    Asks the running client, like tailscale netcheck, and probes once more:
      UDP             whether the server answers a Ping now, and its RTT;
      public address  our endpoint as the server sees it (reflexive);
      NAT             the mapping kind (none, cone = endpoint-independent,
                      symmetric = endpoint-dependent, unknown) and how it
                      was decided;
      NAT-check port  whether the server's second port (listen port + 1)
                      answers a NAT check, and how it sees us;
      local addresses our own addresses with our UDP port;
      port mapping    the router's mapping of our port (UPnP, NAT-PMP or
                      PCP: protocol, external endpoint, lifetime), or why
                      there is none, as status prints it;
      path MTU        the path MTU to the server, found by probing, and the
                      largest inner packet sent on it (larger ones are
                      answered with ICMP "frag needed" / Packet Too Big).
    Only a client runs it. Exit status 0 when the server answered, 1 when it
    did not, 3 no daemon.
`

const NODES = `lightweight-tunnel nodes - node keys and the addresses bound to them (server)

SYNOPSIS
    lightweight-tunnel nodes [--json] [--control PATH | --dev NAME]
    lightweight-tunnel nodes remove ADDRESS|KEY|FINGERPRINT
    lightweight-tunnel nodes allow KEY|FINGERPRINT

    Every node has its own key pair. The server binds a tunnel address to the
    node key that registered it first, keeps the binding in
    <state-dir>/registry.json (0600, survives restarts), and refuses every
    other key for that address, whether its holder is online or not
    ("address bound to another node key"), until the operator frees it.

    nodes     Lists every bound node: address (and its IPv6 address, if it
              has one), key fingerprint (SHA256:...,
              compare it with the node's own out of band), whether it is
              registered now and from where, first and last seen; then the
              full keys, and the revoked keys. --json: the same as JSON.
    nodes remove NODE
              Revokes a node, named by its address (IPv4 or IPv6), its public
              key (base64) or its fingerprint: its sessions are torn down at once, every
              other client drops its sessions with it within a second, the
              address is free, and the key is refused from now on ("key
              revoked"). A key that never registered can be revoked ahead.
              Use it when a node is lost, or replaced by a new install (a new
              key) that must keep the old address.
    nodes allow NODE
              Lifts a revocation (the key or its fingerprint); the node may
              register again, for a free address.

    Strict mode (--authorized-nodes FILE): only the listed "PUBKEY ADDRESS"
    pairs are admitted ("not authorized" otherwise); SIGHUP reads FILE again
    and revokes the keys no longer listed.

    Only a server answers. Exit status 0, 1 when the daemon refused (the
    message says why), 3 no daemon.
`

const CHECK = `lightweight-tunnel check - validate a config file

SYNOPSIS
    lightweight-tunnel check -c FILE
    lightweight-tunnel check FILE

    Reads FILE exactly as a daemon start with -c FILE would (every key
    validated, defaults applied) and starts nothing, like nebula -test.
    Valid: prints one line such as
        config OK: client 10.0.0.2/24 → vpn.example.com:9000 (dev lwt0,
        mtu 1400, direct paths on)
    plus any warnings, and exits 0. Invalid: prints every problem, each
    naming its key, to stderr and exits 2.
`

const METRICS = `lightweight-tunnel metrics - Prometheus metrics (--metrics)

SYNOPSIS
    lightweight-tunnel server|client ... --metrics [HOST:]PORT

    Serves Prometheus text (format 0.0.4) on http://HOST:PORT/metrics while
    the daemon runs; a bare PORT binds 127.0.0.1. Config key "metrics".
    Off by default. Plain HTTP WITHOUT AUTHENTICATION: bind a public address
    only behind a firewall (the daemon warns when the host is not loopback).
    A port in use stops the start with a message naming the port.

    Metrics (all listed with their labels in docs/METRICS.md):
      lwt_info, lwt_dataplane_info, lwt_state, lwt_problem, lwt_uptime_seconds
      lwt_{tun,udp}_{packets,bytes}_total{direction="rx|tx"}
      lwt_relayed_{packets,bytes}_total, lwt_control_packets_total
      lwt_handshakes_total{result}
      lwt_drops_total{reason="..."}  (one series per drop counter)
      lwt_peers{path}, lwt_sessions, lwt_registered_clients
      lwt_peer_info{peer,role,path,endpoint,session}, lwt_peer_rtt_seconds,
      lwt_peer_last_seen_seconds, lwt_peer_{tx,rx}_{packets,bytes}_total
      process_cpu_seconds_total, process_resident_memory_bytes,
      process_start_time_seconds
    Each scrape reads the shared-memory counters status reads; nothing on
    the packet path is involved.
`

const DEMO = `lightweight-tunnel demo - a short demonstration

SYNOPSIS
    lightweight-tunnel demo

    Runs a self-contained demonstration of a server and clients on this
    host and prints what happens, step by step.
`

const VERSION = `lightweight-tunnel version - print the version

SYNOPSIS
    lightweight-tunnel version  |  -v  |  --version

    Prints on stdout, and exits 0:
        lightweight-tunnel VERSION
        node vX.Y.Z (modules ABI N, N-API N), PLATFORM ARCH
        addon PATH (N-API N, COMPILER)     or why it is missing or fails
        commit SHA (git checkout, branch B) | SHA (package build) | unknown
    The commit is read from the .git of a clone, else from
    dist/BUILD_INFO.json, which "npm pack" writes into the package.
`

const INSTALL_SERVICE = `lightweight-tunnel install-service - run it as a systemd service

SYNOPSIS
    lightweight-tunnel install-service NAME [-c FILE] [--root DIR]

    Sets up lightweight-tunnel@NAME, one service per config, started at boot
    once enabled. Run it as root. It writes:
      /etc/systemd/system/lightweight-tunnel@.service  (0644)
              the unit, with ExecStart= naming this node binary and this
              installed command by absolute path;
      /etc/sysusers.d/lightweight-tunnel.conf  (0644)
              the system user "lightweight-tunnel" the service runs as;
      /etc/lightweight-tunnel/NAME.json  (0600, directory 0700)
              with -c FILE: a copy of FILE, which must be a valid config
              (checked first, like a start). An existing different file is
              not overwritten. Without -c the file in place is used.
    Then it creates the user (systemd-sysusers), runs "systemctl
    daemon-reload" where systemd is running, and prints the line that
    starts the service now and at boot:
        systemctl enable --now lightweight-tunnel@NAME
    Where systemd-sysusers or systemctl is missing, or systemd is not PID 1,
    the files are written and the commands to run are printed instead.

    The service: Type=notify (ready once the device, UDP socket and control
    socket are up), Restart=on-failure, user lightweight-tunnel with only
    CAP_NET_ADMIN (ambient: the "ip" commands it runs inherit it), the
    config passed as a credential (it stays root-only), control socket in
    ${CONTROL_DIR} (RuntimeDirectory=), ProtectSystem=strict and further
    hardening ("systemd-analyze security lightweight-tunnel@NAME": 2.0 OK).
    Paths inside the config must be absolute. A server port below 1024
    needs CAP_NET_BIND_SERVICE added to both capability lines (systemctl
    edit lightweight-tunnel@.service).

    NAME: 1..64 letters, digits, "_", "." or "-".
    --root DIR writes under DIR (e.g. an image being built) and runs nothing.

    Remove it: systemctl disable --now lightweight-tunnel@NAME, then delete
    the three files.
`

const COMPLETION = `lightweight-tunnel completion - shell completion

SYNOPSIS
    lightweight-tunnel completion bash

    Prints a bash completion script: commands, the options of each command,
    the values of --placement, --log-level and --p2p, help topics, and file
    names after -c, -g and --root. Install it for every user:
        lightweight-tunnel completion bash \
            | sudo tee /usr/share/bash-completion/completions/lightweight-tunnel
    or for yourself, in ~/.bashrc:
        source <(lightweight-tunnel completion bash)
`

/** Page by command name. */
export const COMMAND_PAGES: ReadonlyMap<string, string> = new Map([
  ['server', SERVER], ['client', CLIENT], ['status', STATUS], ['ping', PING], ['netcheck', NETCHECK],
  ['nodes', NODES], ['check', CHECK], ['metrics', METRICS], ['demo', DEMO], ['version', VERSION],
  ['install-service', INSTALL_SERVICE], ['completion', COMPLETION]
])
