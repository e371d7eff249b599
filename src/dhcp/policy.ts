/**
 * The seam of the DHCP pipeline (pipeline.ts): what every mode is handed about one request,
 * and what it answers. A policy (ProxyDHCP on 67, the PXE boot server on 4011, full DHCP)
 * builds a reply or says why it stays silent; parsing, the machine lookup, the boot
 * decision, encoding, sending and recording are the pipeline's, the same for all of them.
 */
import type { ClientInfo } from '../boot/client.ts';
import type { BootTarget, IgnoreReason } from '../boot/decide.ts';
import type { DhcpResponderMode } from '../events/boot-event.ts';
import type { DhcpPacket } from './packet.ts';
import type { Destination, Peer } from './transport.ts';

/** One request as the pipeline has read it, with the pure boot decision already made. */
export interface Exchange {
  request: DhcpPacket;
  client: ClientInfo;
  /** Option 53 by name: DISCOVER, REQUEST, … ('none' for BOOTP). */
  type: string;
  from: Peer;
  target: BootTarget;
}

/** Why a well-formed request gets no answer: the boot decision's reasons and each mode's own. A bounded set (dhcp_ignored_total{reason}). */
export type DhcpIgnoreReason =
  | IgnoreReason
  | 'not-request'
  | 'not-ethernet'
  | 'other-server'
  | 'unhandled-type'
  | 'pool-exhausted'
  | 'relay-other-subnet'
  | 'not-ours'
  | 'no-address'
  | 'lease-write-failed';

export type ReplyType = 'OFFER' | 'ACK' | 'NAK';

export interface DhcpReply {
  kind: 'reply';
  type: ReplyType;
  /** Built with replyTo; the pipeline encodes it within the client's size limit. */
  packet: DhcpPacket;
  to: Destination;
  /** Full DHCP: the address handed out (also tied to the MAC on the timeline once ACKed). */
  yiaddr?: string | undefined;
  /** Full DHCP: the REQUEST's RFC 2131 state, or why a NAK was sent. */
  state?: string | undefined;
  nakReason?: string | undefined;
}

export interface DhcpSilence {
  kind: 'ignore';
  reason: DhcpIgnoreReason;
  /** In words, for the log line. */
  why: string;
  /**
   * Worth the operator's attention: an info line and a dhcp.ignored step on the machine's
   * timeline (when it boots). Protocol noise (a REQUEST for the site's server, a laptop in
   * proxy mode) is a debug line only, or every machine would look ignored.
   */
  notable: boolean;
}

/** Taken care of, and no reply is due (RELEASE, DECLINE): neither an answer nor an ignore. */
export interface DhcpHandled {
  kind: 'handled';
}

export type PolicyAnswer = DhcpReply | DhcpSilence | DhcpHandled;

export const HANDLED: DhcpHandled = { kind: 'handled' };

export interface DhcpPolicy {
  /** The dhcp_requests_total{mode} label and the log prefix. */
  readonly mode: DhcpResponderMode;
  /** The UDP port it answers on (67 or 4011). */
  readonly port: number;
  /** The client's IPv4 as this request shows it (ties the TFTP and HTTP steps that follow to the machine). */
  clientAddress(ex: Exchange): string | undefined;
  answer(ex: Exchange): PolicyAnswer | Promise<PolicyAnswer>;
}

export function silence(reason: DhcpIgnoreReason, why: string, notable: boolean): DhcpSilence {
  return { kind: 'ignore', reason, why, notable };
}
