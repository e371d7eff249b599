/**
 * The boot part of a reply, shared by ProxyDHCP, the 4011 boot server and full DHCP so
 * every mode hands a client the same thing: siaddr/sname = us, the boot file in BOOTP
 * `file` and option 67, option 60 PXEClient/HTTPClient, 43 for BIOS, 97 echoed.
 */
import type { ClientInfo } from '../boot/client.ts';
import { bootFileOf, type BootableTarget } from '../boot/decide.ts';
import { ipv4Bytes } from '../net/ipv4.ts';
import { Opt, pxeDiscoveryControl } from './options.ts';
import type { DhcpPacket } from './packet.ts';

/*
 * The values every reply carries, encoded once: a reply keeps the Buffers it is given and
 * nothing changes them (the encoder copies them out), and building them per packet showed in
 * the ProxyDHCP offer's profile (bench/dhcp/proxy.md).
 */
const PXE_CLIENT = Buffer.from('PXEClient', 'latin1');
const HTTP_CLIENT = Buffer.from('HTTPClient', 'latin1');
const DISCOVERY_CONTROL_8 = pxeDiscoveryControl(8);
/** Our address (one or two per process) and the boot files handed out (a handful): bounded caches of their bytes. */
const CACHE_LIMIT = 64;
const addressBytes = new Map<string, Buffer>();
const fileBytes = new Map<string, Buffer>();

function cached(cache: Map<string, Buffer>, key: string, make: (key: string) => Buffer): Buffer {
  let bytes = cache.get(key);
  if (!bytes) {
    bytes = make(key);
    if (cache.size < CACHE_LIMIT) cache.set(key, bytes);
  }
  return bytes;
}

const latin1 = (s: string) => Buffer.from(s, 'latin1');

export interface BootReplyOptions {
  /** Our IPv4: siaddr, sname, option 54. */
  serverAddress: string;
  /**
   * Send option 60 PXEClient to PXE clients. ProxyDHCP must (it is how firmware tells a
   * proxy offer from a plain one); full DHCP may leave it out, since PXEClient without 43
   * sends OVMF to port 4011 (wire.md). HTTPClient for HTTP Boot is always sent: without
   * it the firmware ignores the offer.
   */
  pxeVendorClass: boolean;
}

/** Adds the boot fields to `reply` (built with replyTo). Option 53 and any address fields are the caller's. */
export function applyBootTarget(reply: DhcpPacket, client: ClientInfo, target: BootableTarget, opts: BootReplyOptions): void {
  const file = bootFileOf(target);
  reply.siaddr = opts.serverAddress;
  reply.sname = opts.serverAddress;
  // `file` holds 127 bytes; a longer URL rides in option 67 alone (iPXE and OVMF read 67).
  reply.file = Buffer.byteLength(file, 'latin1') <= 127 ? file : '';
  const o = reply.options;
  o.set(Opt.SERVER_ID, cached(addressBytes, opts.serverAddress, ipv4Bytes));
  if (target.action === 'http-boot') o.set(Opt.VENDOR_CLASS, HTTP_CLIENT);
  else if (opts.pxeVendorClass) o.set(Opt.VENDOR_CLASS, PXE_CLIENT);
  // BIOS ROMs need discovery control 8 to take the file from this offer instead of
  // starting boot server discovery; UEFI must get no 43 (it goes to 4011 instead).
  if (client.archName === 'bios' && target.action === 'tftp' && opts.pxeVendorClass) o.set(Opt.VENDOR_SPECIFIC, DISCOVERY_CONTROL_8);
  o.set(Opt.BOOTFILE_NAME, cached(fileBytes, file, latin1));
  if (client.guid) o.set(Opt.CLIENT_GUID, client.guid);
}
