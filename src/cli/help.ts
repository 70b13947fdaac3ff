/**
 * The help text: `lightweight-tunnel --help`, `help [TOPIC]`, `COMMAND --help`.
 * This file is the manual page and the topic lookup; the per-command pages
 * are cli/help-topics.ts.
 * Written like a man page and kept accurate to the option table in
 * cli/options.ts and the settings config/load.ts reads; every default and
 * limit comes from config/defaults.ts and the ignored Go keys from
 * config/go-compat.ts, so the text and the checks cannot drift apart.
 */
import { formatHostPort } from '../config/validate.js'
import { CONTROL_DIR, DEFAULTS, LIMITS } from '../config/defaults.js'
import { GO_IGNORED_KEYS } from '../config/go-compat.js'
import { COMMAND_PAGES, SOCK } from './help-topics.js'

/** Word-wraps `text` at `width` columns, every line indented by `indent` spaces. */
function wrap (text: string, indent: number, width: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) { lines.push(line); line = '' }
    line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') lines.push(line)
  return lines.map(l => ' '.repeat(indent) + l).join('\n')
}

const D = DEFAULTS
const L = LIMITS

const NAME = `NAME
    lightweight-tunnel - encrypted IPv4 VPN: one server, many clients, direct
    paths between clients by UDP hole punching, relay through the server
`

const SYNOPSIS = `SYNOPSIS
    lightweight-tunnel server --listen HOST:PORT --tun CIDR --key-file FILE
        [options]
    lightweight-tunnel client --remote HOST:PORT --tun CIDR --key-file FILE
        [options]
    lightweight-tunnel -c FILE [options]
    lightweight-tunnel status [--json] [--all | --control PATH | --dev NAME |
        -c FILE]
    lightweight-tunnel ping [-c COUNT] [-i SECONDS] [-W SECONDS] [--json] PEER
    lightweight-tunnel netcheck [--json] [--control PATH | --dev NAME]
    lightweight-tunnel nodes [--json] | nodes remove NODE | nodes allow NODE
    lightweight-tunnel check -c FILE
    lightweight-tunnel -g FILE
    lightweight-tunnel demo
    lightweight-tunnel install-service NAME [-c FILE] [--root DIR]
    lightweight-tunnel completion bash
    lightweight-tunnel help [TOPIC]  |  -h, --help  |  -v, --version
`

const DESCRIPTION = `DESCRIPTION
    Every node has a TUN device with an address in one private IPv4 network
    (--tun). The server listens on a public UDP port; clients register with it
    using the network's shared key. Any node can reach any other node's tunnel
    address. Packets between two clients go directly between them when UDP hole
    punching succeeds through their NATs, and through the server otherwise;
    the server relays them sealed and cannot read them. Every pair of nodes
    runs its own handshake with fresh session keys.

    The daemon runs in the foreground, logs to stderr, and answers the status
    command on a unix control socket. It needs root (CAP_NET_ADMIN) to create
    the TUN device.
`

const COMMANDS = `COMMANDS
    server    Run the server (the hub every client registers with).
    client    Run a client that connects to --remote.
    status    Ask the running daemon for its state and peers (see FILES).
    ping PEER Have the daemon ping a peer's tunnel address on its current
              path: which path answered (direct or relay) and the round trip.
    netcheck  Ask the running client about its NAT and its server.
    nodes     On the server: list the node keys and the addresses bound to
              them; "nodes remove NODE" revokes a node, "nodes allow KEY"
              lifts a revocation (see "help nodes").
    check     Validate a config file (-c FILE) and exit 0, or 2 with every
              problem.
    demo      Run a short self-contained demonstration.
    help [TOPIC]
              Show this text, or the part about TOPIC: server, client,
              status, ping, netcheck, nodes, check, metrics, demo, config,
              version, install-service, completion.
    version   Print the version, Node's version, the native addon's build
              and the commit (same as -v, --version).
    install-service NAME [-c FILE] [--root DIR]
              Install the systemd service lightweight-tunnel@NAME (see
              "help install-service").
    completion bash
              Print the bash completion script (see "help completion").
    genkey    Print a new node private key (base64, one line), as wg genkey:
              "umask 077; lightweight-tunnel genkey > node.key", then
              --node-key node.key.
    pubkey    Read a private key on standard input and print its public key
              (the form --server-key and the server's "status" use):
              "lightweight-tunnel pubkey < node.key".
`

const OPTIONS = `OPTIONS
    Every option works with one or two dashes (-mtu, --mtu) and as
    --option VALUE or --option=VALUE. Options may come before or after the
    command. Giving an option twice with different values is an error.

  Both modes
    -t, --tun CIDR[,CIDR6]
              Required. This node's tunnel address with the network's prefix
              length, e.g. 10.0.0.1/24 for the server, 10.0.0.2/24 for a
              client. The prefix must be /${L.prefixMin} to /${L.prefixMax} (/31 and /32 leave no
              room for other nodes) and the address must not be the network's
              network or broadcast address. Optionally an IPv6 address after
              a comma: --tun 10.0.0.2/24,fd00:77::2/64 (one IPv4 address is
              still required). The IPv6 prefix is /16 to /128 (a server's
              below /128), the address unicast (not link-local fe80::/10,
              multicast, loopback or ::) and not the network's all-zero
              address. A client's IPv6 address must lie in the server's IPv6
              network; a server without one refuses clients that have one.
    --key-file FILE, LWT_KEY=KEY, -k, --key KEY
              Required, one of them. The network's shared secret, the same on
              the server and every client. Any non-empty string; shorter than
              ${L.keyWarnBelow} characters gives a warning. The first that gives it wins:
              -k or --key-file on the command line (not both), then the
              environment variable LWT_KEY, then "key" or "keyFile" in the
              config file. --key-file FILE: the key is the file's text
              without one trailing newline; an empty file is an error; a
              file other users can read is an error (chmod 600 it), one its
              group can read a warning. -k works, but a key on the command
              line is visible to every local user in ps(1): a warning says so.
    --network-name NAME
              Optional, the same on every node. Mixed with the tunnel network
              (the --tun network and prefix) into the salt that turns the key
              into the network's psk (docs/PROTOCOL.md 8.1): two networks with
              the same key and the same CIDR share a psk unless named apart.
              Every node of a network must use the same prefix and name.
    --dev NAME, -tun-name NAME
              TUN device name, 1..${L.devNameMax} characters of A-Z a-z 0-9 _ - .
              Default: ${D.dev}.
    --control PATH
              Control socket path. Default:
              ${SOCK} (see FILES).
    --state-dir DIR
              Where the node keeps its state: its private key (node.key),
              and what it learned (a client's pinned server key and address
              cache, a server's address bindings). Created mode 0700. Default:
              /var/lib/lightweight-tunnel/DEV (DEV = --dev).
    --node-key FILE
              This node's private key (one line of base64, as "genkey"
              prints it), instead of STATE_DIR/node.key, which is created on
              first start. The file must not be readable by group or others
              (chmod 600 FILE). The key is the node's identity: the server
              binds its tunnel address to it, peers check it in every
              handshake; "status" shows its fingerprint.
    --mtu N   TUN MTU in bytes, ${L.mtuMin}..${L.mtuMax}, or "auto" for the default.
              Default: ${D.mtu} (fits a 1500-byte path after the outer headers).
              Each path's own MTU is found by probing (status: "path
              MTU"); an inner packet too big for its path is answered with
              ICMP "frag needed" / Packet Too Big, so its sender adapts.
    --mss-clamp
              Lower the MSS option of TCP connection setups (SYN, SYN-ACK;
              IPv4 and IPv6) through the tunnel, both ways, to what the
              peer's path carries (its path MTU, else the TUN MTU, minus 40
              or 60 header bytes), so TCP never sends a segment the path
              would drop, even where ICMP is filtered (hosts on routed
              networks behind a node). Counted: status "mssClamped". Default:
              off.
    --faketcp-offload, --no-faketcp-offload
              Fake TCP's bulk data as superpackets: runs of equal-size
              segments leave through an AF_PACKET socket as one TSO frame to
              the next hop learned from the peer's frames (the kernel or NIC
              cuts and checksums them) and merged frames are split on
              receive. Such frames skip this host's own output firewall
              and NAT hooks and follow the way the peer's frames came, not
              the routing table; --no-faketcp-offload sends every segment
              through the raw IP socket instead (about half the speed).
              status: faketcp.offload. Default: on.
    --fec DATA,PARITY
              Client: forward error correction on the sessions with peers
              that use it too: after every DATA data messages (1..32) send
              PARITY parity messages (1..16) computed over them, so up to
              PARITY lost packets of each group are rebuilt by the receiver
              without a retransmission. Each direction uses its sender's
              values. Costs PARITY/DATA more bandwidth and, for a lone
              packet, its parity ~5 ms later; FEC peers skip the native fast
              path. It pays where loss hurts: real-time traffic, and TCP
              whose congestion control backs off on loss (CUBIC, Linux's
              default: 11 -> 754 Mbit/s at 5 % loss with 10,3). Under BBR,
              which hardly slows for random loss, it gains only on long
              round trips (~1.5x at 20 ms) and costs ~15 % on short ones
              (docs/PERFORMANCE.md). "status" shows it per peer. e.g. 10,3.
              Default: off.
    --keepalive SECONDS
              Seconds between keepalives to the server, ${L.keepaliveMin}..${L.keepaliveMax}.
              Default: ${D.keepalive}.
    --log-level LEVEL
              error, warn, info or debug. Default: ${D.logLevel}.
    --metrics [HOST:]PORT
              Serve Prometheus metrics on http://HOST:PORT/metrics (every
              metric: docs/METRICS.md). A bare PORT binds 127.0.0.1. The
              endpoint is plain HTTP WITHOUT AUTHENTICATION: anyone who
              reaches it reads your peers' addresses and traffic, so name
              another host (0.0.0.0:9100) only behind a firewall; the daemon
              warns when you do. "off": none. Default: off.
    --log-format text|json
              text: one line per event, "TIME LEVEL component: message
              key=value ..."; json: one JSON object per line with time,
              level, component, msg and the event's fields as keys
              (docs/LOGGING.md). Default: ${D.logFormat}. Under systemd (JOURNAL_STREAM
              names the daemon's stderr) text lines carry the journal's
              priority prefix (<3> error ... <7> debug) instead of the time,
              so "journalctl -p err" finds the errors.
    --placement inline|fused|split
              Where the packet pipelines run: inline = on the main thread,
              beside the control plane (no worker thread: ~10 MB less);
              fused = one worker thread for both directions; split = one
              worker per direction (TUN to UDP, UDP to TUN). Default:
              ${D.placement.client} for a client, ${D.placement.server} for a server. Measured on 2 cores:
              the same throughput; a server keeps its pipelines off the
              thread that answers handshake bursts (docs/PERFORMANCE.md).
    --handshake-workers N|auto
              Server: threads that run the handshake's key exchange (X25519)
              beside the main thread, which keeps every decision. auto (the
              default) is 0 for now: on 2 cores the pool answered fewer
              handshakes a second than the main thread (npm run
              bench:handshakes).
    --fast-path, --no-fast-path
              Handle a lone packet (a ping, a keystroke, a DNS query)
              entirely in the native addon, without entering JavaScript,
              and send the kernel's immediate answer to it in the same
              step; bursts still go through the batched pipelines. Cuts an
              idle tunnel's round trip to about a third (0.3 to 0.1 ms on
              the benchmark machine). Default: on; --no-fast-path is for
              comparing and for ruling it out when debugging.
    -q, --quiet
              Log errors only (--log-level error).
    --verbose Log everything (--log-level debug); with any command, also
              print the stack trace of an unexpected error.
    -c, --config FILE
              Read settings from the JSON file FILE (see CONFIGURATION FILE).
              Options given beside -c override the file's values.

  Server only
    -l, --listen HOST:PORT
              UDP address to listen on; HOST is a local IPv4 address, or an
              IPv6 one in brackets ([2001:db8::1]:9000); [::] means every
              address of both families (one dual-stack socket: IPv4 clients
              too), 0.0.0.0 every IPv4 one; PORT 1..65535; ":PORT" means
              [::]:PORT. Default: ${formatHostPort(D.serverListen.host, D.serverListen.port)} (0.0.0.0:${D.serverListen.port}, with
              one info line, on a host without IPv6).
              The server also answers NAT checks on PORT+1 (clients learn
              from it whether their NAT maps per destination); open both
              ports in a firewall. If PORT+1 is taken, the server warns and
              runs without it (clients then learn their NAT kind from peers).
    --max-clients N
              Clients registered at once, ${L.maxClientsMin}..${L.maxClientsMax}; further clients are
              refused. Default: ${D.maxClients}.
    --authorized-nodes FILE
              Strict mode: admit only the nodes FILE lists, one
              "PUBKEY ADDRESS" per line (a node's public key in base64 and
              its tunnel address; # comments). Any other key, or a listed key
              asking for another address, is refused ("not authorized"). A
              bad line stops the start with FILE:LINE. SIGHUP reads FILE
              again: keys no longer listed are revoked at once (as by "nodes
              remove"), keys added are admitted (a revocation is lifted).
              Default: none (every holder of the network key may register a
              free address; see "help nodes").
    --approve-routes all | NODE=CIDR[+CIDR...][,NODE=...] | NODE=all
              Which networks advertised by clients are used (NODE is a
              client's tunnel address): "all", or per client the approved
              networks, or all of that client's. An advertised route not
              approved stays pending (status says so); one overlapping a
              route already approved for another node is refused (the
              first holder keeps it). SIGHUP applies a change at once.
              Default: none approved.
    --client-isolation
              Clients reach the server's tunnel address and the server's own
              routes, never each other: no relay between clients, no peer
              list entries (so no direct paths). Server to client traffic
              works. Default: off.
    --tcp-listen HOST:PORT, --no-tcp
              Also accept the tunnel over TCP (for clients whose networks
              block UDP): on HOST:PORT (a bare PORT binds 0.0.0.0), e.g.
              0.0.0.0:443. The same sealed messages travel framed (a u16
              length each); a connection must send a handshake first and
              complete it within 5 s. --no-tcp: UDP only. Default: the
              --listen host and the UDP port's number.
    --faketcp
              Also accept clients over fake TCP (--transport faketcp on the
              client) on the TCP port with the number of the UDP port: raw
              segments that look like one TCP connection to firewalls and
              NATs. Needs a fixed --listen port, CAP_NET_RAW and nftables
              (a table lwt_faketcp_PORT drops the kernel's RSTs for that
              port, and the data segments the daemon's packet socket took
              before the kernel's TCP sees them; removed at exit, replaced
              at start after a crash). Bulk data moves as superpackets
              the kernel cuts into the segments (status: faketcp.offload).
              Default: off.

  Client only
    -r, --remote HOST:PORT
              Required. The server's address: an IPv4 address, an IPv6 one in
              brackets ([2001:db8::1]:9000) or a host name (A or AAAA, the
              first the resolver gives), and its port. Over IPv6, peers reach
              each other at their IPv6 addresses too (no NAT: direct at
              once). A name that does not resolve yet (at boot, before
              the network is up) is retried after 1 s, backing off to 30 s;
              status shows state "resolving" meanwhile. While the server does
              not answer, the name is looked up again (at most every 30 s) and
              a new address is followed. An IPv4 address is used as given.
    --transport auto|udp|tcp|faketcp
              How the server is reached. auto: UDP, and TCP to the server's
              TCP port when UDP gets no answer in about 2 s (status names
              the transport and why; UDP is probed every 2 s meanwhile and
              used again once it answers); udp and tcp pin one. faketcp:
              each sealed message rides in one TCP segment of a flow that
              looks like an ordinary TCP connection (SYN, SYN-ACK, ACK;
              sequence numbers, timestamps), with no retransmission, so it
              passes firewalls that drop UDP and any TCP not established
              (the server needs --faketcp). 24 bytes more per packet than
              UDP. Needs CAP_NET_RAW and nftables (table lwt_faketcp_cPORT).
              Bulk data moves as superpackets the kernel cuts into the
              segments (status: faketcp.offload).
              Direct paths to peers stay UDP; a client on TCP or fake TCP
              reaches the others through the server's relay. Default: auto.
    --p2p, --no-p2p, -p2p=false
              Try direct paths to other clients (hole punching), or always
              go through the server. Default: on.
    --port-mapping, --no-port-mapping
              Ask the default gateway for a UDP mapping of our port (PCP,
              else NAT-PMP; UPnP IGD when neither answers in 250 ms: SSDP,
              then SOAP AddPortMapping; renewed at half its lifetime,
              deleted on exit) and offer the mapped address to peers as a
              candidate: two clients behind symmetric NATs then go direct
              when either router maps. status and netcheck show the
              mapping or why there is none.
              Default: on (with --p2p).
    -l, --listen HOST:PORT
              Local UDP address to bind. Default: ${formatHostPort(D.clientListen.host, D.clientListen.port)} (any
              address of either family, a free port chosen by the kernel).
    --accept-routes, --no-accept-routes
              Install the approved routes of the other nodes on the TUN
              device (ip route replace ... dev DEV), and remove them when
              withdrawn and at exit. A route that would capture the path to
              the server, or that another device already routes, is skipped
              with an error. --no-accept-routes leaves the routing table
              alone. Default: on.
    --server-key KEY|FILE
              The server's public key (base64, as "status" on the server
              shows it), or a file holding it. Without it the client pins
              the key the server presents on first contact in
              STATE_DIR/server.pub; either way a server presenting another
              key is refused (status shows why).

  Both modes
    --advertise-routes CIDR[,CIDR...]   (Go: -routes)
              Networks behind this node, IPv4 or IPv6 (e.g.
              192.168.50.0/24,fd50::/64; host bits zero, at most 16, none
              overlapping the tunnel network or each other). A client's are
              used once the server approves them (--approve-routes); a
              server's are always used. The node must forward them (sysctl
              net.ipv4.ip_forward=1, net.ipv6.conf.all.forwarding=1: a
              warning says when it is off). Default: none.

  Other
    -g FILE   Write an example server config to FILE and a matching client
              config to FILE.client, both mode 0600 and sharing a freshly
              generated random key, then exit. Edit "remote" in FILE.client.
              Refuses to overwrite a file that is not empty.
    --json    status, ping, netcheck: print JSON instead of text.
    --all     status: every daemon on this host, in every network namespace.
    -h, --help
              Show help (with a command: that command's help).
    -v, --version
              Print the version, Node's, the addon's and the commit; exit.
    --root DIR
              install-service: write the files under DIR instead of /
              (an image being built, a test); nothing is run there.
`

const GO_FORMS = `COMPATIBILITY WITH THE GO lightweight-tunnel
    The Go program's command lines and config files work:
        -m server|client     the mode, instead of the server/client command
        -l, -r, -t, -k       as above
        -mtu N, -max-clients N, -tun-name NAME, -p2p=false
        -routes CIDR,...     = --advertise-routes
        -client-isolation    = --client-isolation (server)
        -c FILE, -g FILE, -v
    Differences, on purpose:
      * Options beside -c override the file (Go silently ignored them).
      * Every problem is reported at once, and nothing is silently replaced:
        a client given 10.0.0.1/24 keeps it (Go rewrote it to 10.0.0.2/24).
      * -k is required (Go ran without encryption when it was missing).
      * A 0 in a config file under a Go key name (mtu, keepalive,
        max_clients) meant "the default" in Go: it still does, with a warning.
        On the command line and under our key names 0 is an error.
      * -routes are used only once the server approves them
        (--approve-routes); -client-isolation still lets the server reach
        its clients (Go cut server to client traffic too).
      * -fec-data N -fec-parity M is one option here: --fec N,M (the Go
        flags are accepted with a warning saying so; the config keys
        fec_data and fec_parity mean what they meant in Go).
      * The Go options for features that do not exist here (-send-queue,
        -recv-queue, -multi-client, -p2p-port, -mesh-routing, -max-hops,
        -route-update, -config-push-interval, -nat-detection, -xdp,
        -kernel-tune) and the matching config keys are accepted and ignored
        with one warning each saying why.
`

const CONFIG = `CONFIGURATION FILE
    -c FILE reads one JSON object (a UTF-8 byte order mark is allowed).
    Precedence: command-line options, then the file, then the defaults
    (for the key: the command line, then LWT_KEY, then the file).
    Keys (our name / the Go program's name):
        mode                        "server" or "client"
        listen     / local_addr     "HOST:PORT" (local_addr is ignored for
                                    clients, as in Go)
        remote     / remote_addr    "HOST:PORT" (client)
        tun        / tunnel_addr    "10.0.0.2/24", or with IPv6
                                    "10.0.0.2/24,fd00:77::2/64" or
                                    ["10.0.0.2/24", "fd00:77::2/64"]
        key                         "..." (the shared secret)
        keyFile    / key_file       "/path/to/key" (instead of key)
        networkName / network_name  "office" (optional, every node)
        dev        / tun_name       "lwt0"
        control                     "/path/to/socket"
        mtu                         1400 or "auto"
        fec                         "10,3" or "off" (client); the Go keys
                                    fec_data + fec_parity (both 0: off)
        maxClients / max_clients    100 (server)
        p2p        / p2p_enabled    true or false (client)
        portMapping / port_mapping  true or false (client)
        keepalive                   10
        logLevel                    "error", "warn", "info" or "debug"
        logFormat                   "text" or "json"
        placement                   "inline", "fused" or "split"
        fastPath                    true or false
        mssClamp                    true or false
        handshakeWorkers            "auto" or 0..64 (server)
        metrics                     "127.0.0.1:9100", 9100 or "off"
        stateDir                    "/var/lib/lightweight-tunnel/lwt0"
        nodeKey                     "/path/to/node.key"
        serverKey                   "base64 public key" or "/path" (client)
        authorizedNodes             "/etc/lightweight-tunnel/nodes" (server)
        advertiseRoutes / advertise_routes / routes
                                    "192.168.50.0/24,fd50::/64" or a list
        approveRoutes / approve_routes  (server) "all", "NODE=CIDR+CIDR,...",
                                    a list of "NODE=CIDR+CIDR" or an object
                                    { "10.0.0.2": ["192.168.50.0/24"],
                                      "10.0.0.3": "all" }
        acceptRoutes / accept_routes  true or false (client)
        clientIsolation / client_isolation  true or false (server)
        transport                   "auto", "udp", "tcp" or "faketcp" (client)
        tcp                         true or false (server)
        tcpListen / tcp_listen      "0.0.0.0:443" or 443 (server)
        faketcp                     true or false (server)
        faketcpOffload / faketcp_offload  true or false
    Numbers are JSON numbers ("mtu": 1400, not "1400"). A syntax error is
    reported with its line and column. SIGHUP reloads the file (SIGNALS).
    Unknown keys are an error naming them. These Go keys are accepted and
    ignored with one warning each saying why:
${wrap(Object.keys(GO_IGNORED_KEYS).join(', ') + '.', 8, 78)}
    A config file holds the key: keep it mode 0600 (a warning says so when
    others can read it).
`

const FILES = `FILES
    ${SOCK}
              Default control socket (mode 0600, directory 0755). <netns-id>
              is the inode number of /proc/self/ns/net, so daemons in
              different network namespaces never share a socket even with the
              same --dev. status computes the same path: run it with the same
              --dev (or --control) in the same namespace as the daemon, e.g.
              "ip netns exec NS lightweight-tunnel status". A socket file left
              by a daemon that died is replaced at start; a live one makes the
              new daemon refuse to start.
    /var/lib/lightweight-tunnel/DEV/ (--state-dir)
              node.key: this node's private key (mode 0600, created on first
              start unless --node-key names one). The folder is 0700; other
              state (a client's pinned server key, a server's address
              bindings) lives beside it.
    <state-dir>/registry.json
              The server's node registry: which node key holds which tunnel
              address, and the revoked keys (mode 0600, replaced atomically;
              see "help nodes"). A damaged file stops the server's start with
              an error naming it; it never starts with an empty registry.
    <state-dir>/peers.json
              The client's address cache: the peers reached directly
              (address, node key, endpoints that answered; 0600, at most
              256, 7 days). A client restarted while the server is down
              reaches them there. Safe to delete.
    <state-dir>/portmap.json
              The client's live port mapping (gateway, ports, PCP nonce),
              removed when it is deleted. A run after a crash or kill -9
              deletes the mapping it names at the gateway first.
    FILE, FILE.client
              Config files written by -g and read by -c.
    /etc/systemd/system/lightweight-tunnel@.service
    /etc/sysusers.d/lightweight-tunnel.conf
    /etc/lightweight-tunnel/NAME.json
              The service, its system user and the config of the instance
              lightweight-tunnel@NAME, written by install-service.
`

const EXIT = `EXIT STATUS
    0    success; the daemon exits 0 after a clean shutdown.
    1    runtime error (TUN device, socket, control socket, ...).
    2    usage error: bad or conflicting options or config file; every
         problem is printed, each naming the option or key.
    3    status, ping, netcheck: no daemon is listening on the control
         socket (or none runs in this network namespace).
    ping exits 1 when no Pong came; netcheck exits 1 when the server did not
    answer; check exits 2 when the file has problems.
`

const SIGNALS = `SIGNALS
    SIGINT, SIGTERM
         Clean shutdown: the daemon closes its sessions and sockets, removes
         its TUN device and control socket, and exits.
    SIGHUP
         Reload the -c file (with the options given beside it at start).
         Applied at once, without dropping a session: logLevel, logFormat,
         keepalive, maxClients (lowering it never disconnects a client, it
         refuses new ones; raising it above the value at start needs a
         restart), authorizedNodes (its file is read again on every
         SIGHUP; keys no longer listed are revoked), approveRoutes (every
         client's routes are decided again). Every other change is
         named in one log line as needing a restart and keeps its running
         value. A file with problems is refused (each problem is logged) and
         the running config is kept.
         Without -c there is nothing to reload: one log line says so.
    The daemon removes its control socket on every exit, also after an
    error. A closed stderr (a log reader that went away) does not stop it.
`

const EXAMPLES = `EXAMPLES
    Generate a key pair of config files, then start from them:
        lightweight-tunnel -g /etc/lightweight-tunnel.json
        lightweight-tunnel -c /etc/lightweight-tunnel.json

    A server on a public host (203.0.113.5), the key in a 0600 file:
        lightweight-tunnel server --listen 0.0.0.0:9000 --tun 10.0.0.1/24 \\
            --key-file /etc/lightweight-tunnel/key
    or from the environment (not visible in ps):
        LWT_KEY="$KEY" lightweight-tunnel server --tun 10.0.0.1/24

    Two clients, each behind its own NAT:
        lightweight-tunnel client --remote 203.0.113.5:9000 \\
            --tun 10.0.0.2/24 --key "$KEY"
        lightweight-tunnel client --remote 203.0.113.5:9000 \\
            --tun 10.0.0.3/24 --key "$KEY"
    Then "ping 10.0.0.3" on the first client reaches the second.

    The same in the Go program's syntax:
        lightweight-tunnel -m server -l 0.0.0.0:9000 -t 10.0.0.1/24 -k "$KEY"
        lightweight-tunnel -m client -r 203.0.113.5:9000 -t 10.0.0.2/24 \\
            -k "$KEY"

    Ask a daemon how it is doing:
        lightweight-tunnel status
        lightweight-tunnel status --json
        lightweight-tunnel status --dev lwt1
        lightweight-tunnel status --all
        lightweight-tunnel ping 10.0.0.3
        lightweight-tunnel netcheck
        lightweight-tunnel check -c /etc/lightweight-tunnel/home.json
`

/** The help text for `topic` (undefined: the full manual page). */
export function helpText (topic?: string): string {
  if (topic === 'config') return CONFIG
  const page = topic === undefined ? undefined : COMMAND_PAGES.get(topic)
  return page ?? [NAME, SYNOPSIS, DESCRIPTION, COMMANDS, OPTIONS, CONFIG, GO_FORMS, FILES, EXIT, SIGNALS, EXAMPLES].join('\n')
}
