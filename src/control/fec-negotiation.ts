/**
 * FEC negotiation on end-to-end sessions (issue 13 item 3, PROTOCOL §4.7).
 * A client with --fec puts a FEC attribute (wire/attrs.ts type 3: data,
 * parity) in the InitPayload of every peer handshake it starts; a responder
 * with --fec that sees it answers with its own FEC attribute in the
 * RespPayload. The session uses FEC only when both did: then each side
 * sends parity with ITS OWN parameters (a parity message names its group's
 * size, so the receiver needs no agreement on them) and decodes the other's.
 * A node without --fec (or an older one) neither offers nor answers, so it
 * never receives parity it did not ask for.
 *
 *   initiator: start ─▶ offer(ours) in InitPayload.attrs
 *   responder: onInit ─▶ agreed(ours, init attrs) ─▶ answer in RespPayload.attrs,
 *              session.fec; recv key with fec; send key with fec on Confirm
 *   initiator: onResponse ─▶ agreed(ours, resp attrs) ─▶ session.fec
 */
import type { NodeAttrs } from '../wire/attrs.js'

export interface FecParams { readonly data: number, readonly parity: number }

/** The attrs to send (undefined: none, so the block stays empty) when we use `ours`. */
export function fecAttrs (ours: FecParams | null | undefined): NodeAttrs | undefined {
  return ours == null ? undefined : { tunnel6: null, routes: [], fec: { data: ours.data, parity: ours.parity } }
}

/** The session's FEC: our parameters when both sides offered FEC, else null. */
export function agreedFec (ours: FecParams | null | undefined, theirs: NodeAttrs | undefined): FecParams | null {
  return ours != null && (theirs?.fec ?? null) !== null ? ours : null
}
