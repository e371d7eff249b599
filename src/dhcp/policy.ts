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
  | 'not-boot-phase'
  | 'unhandled-type'
  | 'pool-exhausted'
  | 'no-pool'
  | 'relay-other-subnet'
  | 'relay-bad-port'
  | 'not-ours'
  | 'no-address'
  | 'lease-write-failed'
  /** A shared pool (etcd): another appliance changed the address first. */
  | 'lease-taken';

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
   * Whether it goes on the machine's timeline as a dhcp.ignored step (machines that boot
   * only). Protocol noise (a REQUEST for the site's server, a laptop in proxy mode) does
   * not, or every machine would look ignored.
   */
  timeline: boolean;
  /** The log line's level: info for what an operator should see, debug for the rest. */
  level: 'info' | 'debug';
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

/** A silence worth the operator's attention: an info line and a timeline step. */
export function notable(reason: DhcpIgnoreReason, why: string): DhcpSilence {
  return { kind: 'ignore', reason, why, timeline: true, level: 'info' };
}

/** Protocol noise: a debug line, no timeline step. */
export function noise(reason: DhcpIgnoreReason, why: string): DhcpSilence {
  return { kind: 'ignore', reason, why, timeline: false, level: 'debug' };
}

/** On the machine's timeline, but only a debug line (full DHCP's protocol refusals, as they always were). */
export function recorded(reason: DhcpIgnoreReason, why: string): DhcpSilence {
  return { kind: 'ignore', reason, why, timeline: true, level: 'debug' };
}
