/**
 * Protocol-wide constants of lightweight-tunnel protocol v2: version, crypto
 * identifiers and limits. Byte layouts and their sizes live next to
 * their codecs (wire/messages.ts, wire/payloads.ts, wire/control.ts); this file
 * holds the numbers that are not tied to one layout. docs/PROTOCOL.md is the
 * prose version of everything here; change both together.
 *
 * Timers (rekey, reject, handshake retry and jitter, …) are not here: the
 * one set is control/constants.ts, next to the code that runs them.
 */

/** Byte 1 of handshake messages. A responder drops any other value (no reply). */
export const PROTOCOL_VERSION = 3

// ---------------------------------------------------------------------------
// Crypto identifiers (see crypto/noise.ts, crypto/kdf.ts)
// ---------------------------------------------------------------------------

/** Noise protocol name, hashed into the initial handshake state (Noise rev 34 §5.2). */
export const NOISE_PROTOCOL_NAME = 'Noise_IXpsk0_25519_ChaChaPoly_BLAKE2s'

/**
 * Noise prologue (ASCII). Mixed into the handshake hash before message 1, so
 * a peer speaking another protocol version can never complete a handshake
 * with us even if it shares the network key.
 */
export const NOISE_PROLOGUE = 'lightweight-tunnel v3'

/**
 * Input keying material for the control-channel keys: the control keys are
 * Noise-HKDF(ck, "control") after message 2, the data keys are Split() =
 * Noise-HKDF(ck, empty). Distinct inputs give independent key pairs, so the
 * data path (worker threads) and the control path (main thread) each own a
 * counter space without coordinating.
 */
export const CONTROL_KEY_INFO = 'control'

/** Length in bytes of every symmetric key: the psk and all ChaCha20-Poly1305 keys. */
export const KEY_LEN = 32

/**
 * Start of the salt for the scrypt stretch of the network secret into the
 * 32-byte psk; the network's CIDR and optional name follow (crypto/kdf.ts
 * pskSalt, PROTOCOL §8.1). v1 used 'lightweight-tunnel/v1/psk' alone, one
 * salt for every network.
 */
export const PSK_SALT_PREFIX = 'lightweight-tunnel/v2/psk/'

/**
 * scrypt cost N = 2^15, r = 8, p = 1: needs 128 * N * r = 32 MiB and roughly
 * 50-100 ms of CPU on a 2020s x86 core (measured figure in crypto/kdf.ts).
 * Paid once per daemon start; it makes offline guessing of a weak network
 * secret from a captured handshake ~10^5 times more expensive than one hash.
 */
export const PSK_SCRYPT_N = 2 ** 15
export const PSK_SCRYPT_R = 8
export const PSK_SCRYPT_P = 1
/** Node's scrypt refuses to run above maxmem; 64 MiB leaves 2x head room over the 32 MiB needed. */
export const PSK_SCRYPT_MAXMEM = 64 * 1024 * 1024

// ---------------------------------------------------------------------------
// Counters and replay protection
// ---------------------------------------------------------------------------

/**
 * Rekey when a sending counter reaches this (WireGuard: 2^60). 2^48 packets
 * take ~9 years at 1 Mpps, so in practice REKEY_AFTER (control/constants.ts) always fires first;
 * the bound exists so correctness does not depend on that.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 48

/**
 * No counter at or above this is ever sent or accepted. Counters travel as
 * u64 on the wire but are JS numbers in memory; 2^52 keeps every counter,
 * and every counter + window arithmetic, an exact integer (< 2^53).
 */
export const REJECT_AFTER_MESSAGES = 2 ** 52

/**
 * Replay bitmap size in bits (WireGuard's original kernel value,
 * COUNTER_BITS_TOTAL = 2048). Stored as 64 Uint32 words.
 */
export const REPLAY_BITMAP_BITS = 2048

/**
 * Width of the replay window: a counter more than this far below the
 * highest accepted counter is rejected as too old. One 32-bit word of the
 * ring is the one being recycled, hence 2048 - 32 (RFC 6479 §2).
 */
export const REPLAY_WINDOW = REPLAY_BITMAP_BITS - 32

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/**
 * Most LAN endpoints a client announces (InitPayload, PeerUpdate entries).
 * Eight covers multi-homed hosts and bounds a PeerUpdate entry to 64 bytes.
 */
export const MAX_LAN_ADDRS = 8

/**
 * Default upper bound on one PeerUpdate control payload (plaintext bytes).
 * 1100 + 16 transport header + 16 tag + 8 relay header + 28 IPv4/UDP = 1168,
 * under the 1280-byte IPv6 minimum MTU and any sane path MTU, so peer lists
 * never depend on IP fragmentation.
 */
export const PEER_UPDATE_MAX_BYTES = 1100

/**
 * Index value 0 is never allocated to a session (senderIndex/receiverIndex)
 * nor as a peerId, so 0 can mean "none" in payloads (RespPayload.peerId).
 */
export const NO_INDEX = 0
