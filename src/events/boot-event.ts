/**
 * What the timeline records: one protocol step of one machine's boot, a union keyed by
 * `step`. Producers (dhcp/, tftp/, http/) and readers (progress, stall watch, RA quench,
 * /api/machines and the page) compile against these types, so a field renamed on one side
 * is an error on the other. `step` names and detail fields are what /api/machines returns.
 */
import type { ArchName } from '../boot/client.ts';
import type { BootAction } from '../boot/decide.ts';
import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';

/** Which responder answered on the DHCP side: port 67 as ProxyDHCP or full DHCP, or the PXE boot server on 4011. */
export type DhcpResponderMode = 'proxy' | 'bootserver' | 'full';

/** A DHCP or PXE request from a machine that boots (it sent option 93). */
export interface DhcpRequestDetail {
  /** DISCOVER, REQUEST, … ('none' for BOOTP). */
  type: string;
  mode: 'proxy' | 'full';
  arch: ArchName;
  ipxe: boolean;
  xid: number;
  port: number;
  /** Option 12, when the client sent one. */
  hostname?: string | undefined;
}

export interface PxeRequestDetail {
  type: string;
  arch: ArchName;
  ipxe: boolean;
  xid: number;
  port: number;
  /** address:port the request came from (OVMF sends from its own address:4011). */
  from: string;
}

/** What a DHCP reply handed the machine. NAKs carry no boot fields. */
export interface DhcpReplyDetail {
  type: 'OFFER' | 'ACK' | 'NAK';
  mode: 'proxy' | 'full';
  /** address:port the reply went to. */
  to: string;
  action?: BootAction | undefined;
  /** The boot file: a TFTP file name, or an http:// URL for iPXE and HTTP Boot. */
  file?: string | undefined;
  reason?: string | undefined;
  /** Full DHCP: the address handed out. */
  yiaddr?: string | undefined;
  /** Full DHCP: the RFC 2131 client state the REQUEST was in (selecting, init-reboot, renewing). */
  state?: string | undefined;
  /** The boot config that will answer this machine's /ipxe (`mac/…`, `default`), when one does. */
  config?: string | undefined;
}

export interface PxeReplyDetail {
  type: 'ACK';
  to: string;
  action: BootAction;
  file: string;
  reason: string;
  config?: string | undefined;
}

/** A request from a booting machine deliberately left unanswered. */
export interface DhcpIgnoredDetail {
  type: string;
  mode: DhcpResponderMode;
  /** A bounded code (no-firmware, unsupported-arch, pool-exhausted, …): the dhcp_ignored_total label. */
  reason: string;
  /** The same in words. */
  detail: string;
  arch: ArchName;
  port: number;
}

export interface TftpStartDetail {
  file: string;
  /** The options the client asked for (blksize, tsize, windowsize, …). */
  options: Record<string, string>;
}

export interface TftpEndDetail {
  file: string;
  /** `ok`, or how the transfer ended (tftp/session.ts Outcome: probe-aborted, not-found, timeout, …). */
  outcome: string;
  bytes: number;
  ms: number;
}

/** What every HTTP step says; `path` and `reason` are set when the request failed. */
export interface HttpDetail {
  status: number;
  path?: string | undefined;
  reason?: string | undefined;
}

/** A per-machine lookup over HTTP (/ipxe, /cloud, the Pixiecore API). */
export interface HttpLookupDetail extends HttpDetail {
  /** False when no config matched (or the one that did is broken). */
  found: boolean;
  /** The store key that answered (`uuid/…`, `mac/…`, `default`) and its file. */
  key?: string | undefined;
  file?: string | undefined;
}

/** A served boot script (or Pixiecore answer) names the files the boot still has to fetch. */
export interface HttpScriptDetail extends HttpLookupDetail {
  kernel?: string | undefined;
  initrds?: string[] | undefined;
}

export interface HttpIpxeDetail extends HttpScriptDetail {
  hostname?: string | undefined;
  serial?: string | undefined;
}

export interface HttpPixiecoreDetail extends HttpScriptDetail {
  /** The Pixiecore server that asked (not the machine). */
  from: string;
}

export interface HttpImageDetail extends HttpDetail {
  path: string;
  bytes?: number | undefined;
  range?: string | undefined;
}

/**
 * A GRUB config served to a machine: over TFTP by the dispatcher's hand-over (grub/boot.cfg?…)
 * or over HTTP by /grub. Like a boot script it names the files the boot still has to fetch.
 */
export interface GrubConfigDetail {
  via: 'tftp' | 'http';
  /** HTTP only: the status /grub answered, and the path when it failed. */
  status?: number | undefined;
  path?: string | undefined;
  found: boolean;
  key?: string | undefined;
  file?: string | undefined;
  kernel?: string | undefined;
  initrds?: string[] | undefined;
  /** Why no config was found, or what will not work (an http:// kernel for a GRUB without http). */
  reason?: string | undefined;
}

/** Every step and its detail. */
export interface BootEventDetails {
  'dhcp.request': DhcpRequestDetail;
  'dhcp.reply': DhcpReplyDetail;
  'dhcp.ignored': DhcpIgnoredDetail;
  'pxe.request': PxeRequestDetail;
  'pxe.reply': PxeReplyDetail;
  'tftp.start': TftpStartDetail;
  'tftp.end': TftpEndDetail;
  'http.boot-script': HttpDetail;
  'http.ipxe': HttpIpxeDetail;
  'http.cloud': HttpLookupDetail;
  'http.pixiecore': HttpPixiecoreDetail;
  'http.image': HttpImageDetail;
  'grub.config': GrubConfigDetail;
}

export type BootStep = keyof BootEventDetails;

/**
 * One recorded step: `at` is milliseconds since the epoch, `ip` the client's IPv4 when known.
 * `appliance` is set only in the fleet view (a shared store): the --name of the appliance that
 * served the step.
 */
export type BootEvent = {
  [S in BootStep]: { step: S; at: number; ip: string | undefined; detail: BootEventDetails[S]; appliance?: string | undefined };
}[BootStep];

export type BootEventOf<S extends BootStep> = Extract<BootEvent, { step: S }>;

/** What a producer hands the timeline. TFTP and image downloads carry no MAC: their `ip` ties them to the machine holding that address. */
export type BootEventInput = {
  [S in BootStep]: { step: S; mac?: Mac | undefined; uuid?: Uuid | undefined; ip?: string | undefined; detail: BootEventDetails[S] };
}[BootStep];
