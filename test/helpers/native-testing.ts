/**
 * The addon's test build: build/Release/lwt_native_testing.node (binding.gyp
 * target lwt_native_testing, native/testing.c), the production addon's
 * exports plus the test seams below. Production (src/) never loads it.
 *
 * Found like the production addon: from the package root that
 * src/dataplane/native.ts finds. Loaded once per thread (context-aware, like
 * the production addon). It is a separate shared object with its own
 * per-thread state, so fds are the only thing the two share: a socket pair
 * from socketPairDgram here can be handed to the production addon's calls.
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { packageRoot, type Native } from '../../src/dataplane/native.js'

/** The test build's exports: the whole production API plus the seams of native/testing.c. */
export interface NativeTesting extends Native {
  /** The split step of tunReadSplit on a packet already in sbuf (its length in state[0]). */
  vnetSplit(sbuf: Uint8Array, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number, state: Int32Array): number
  /** What tunWriteBatchGro would write, gathered into out (vnet header + packet per write); outLens[w] = length. Returns writes. */
  vnetCoalesce(mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number, out: Uint8Array, outLens: Int32Array): number
  /** Poly1305 of msg (a multiple of 16 bytes) by the addon's compact implementation (small packets). */
  poly1305Blocks(key: Uint8Array, msg: Uint8Array): Uint8Array
  /** An AF_UNIX datagram socket pair (non-blocking): a stand-in TUN fd, one read per packet. */
  socketPairDgram(): [number, number]
  /** This thread's cached OpenSSL seal key then open key (64 bytes; zeros when none or after aeadForget). */
  aeadCachedKeys(): Uint8Array
  /** How fake TCP cuts a batch of datagrams (to flows with a known next hop) into superpackets: out[r] = datagrams in run r; returns runs. */
  ftcpRunPlan(addrs: Uint32Array, lens: Int32Array, n: number, maxLen: number, maxSegs: number, out: Int32Array): number
}

/** Path of the test build, for tests that load it in a child process. */
export const TESTING_ADDON = join(packageRoot(), 'build', 'Release', 'lwt_native_testing.node')

let cached: NativeTesting | undefined

/** Loads the test build once per thread. Throws when it is not built (npm ci / npm run build build it). */
export function loadTestingNative (): NativeTesting {
  if (cached === undefined) cached = createRequire(import.meta.url)(TESTING_ADDON) as NativeTesting
  return cached
}
