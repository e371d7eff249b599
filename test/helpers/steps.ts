/** Timeline steps as the DHCP and TFTP services record them, for tests that feed a timeline by hand. */
import type { DhcpIgnoredDetail, DhcpReplyDetail, DhcpRequestDetail, TftpEndDetail, BootEventInput } from '../../src/events/boot-event.ts';
import type { Mac } from '../../src/net/mac.ts';

export interface Where {
  mac?: Mac;
  ip?: string;
}

export const steps = {
  dhcpRequest: (where: Where, detail: Partial<DhcpRequestDetail> = {}): BootEventInput => ({
    step: 'dhcp.request',
    ...where,
    detail: { type: 'DISCOVER', mode: 'proxy', arch: 'bios', ipxe: false, xid: 1, port: 67, ...detail },
  }),
  dhcpReply: (where: Where, file = 'undionly.kpxe', detail: Partial<DhcpReplyDetail> = {}): BootEventInput => ({
    step: 'dhcp.reply',
    ...where,
    detail: { type: 'OFFER', mode: 'proxy', to: '255.255.255.255:68', action: 'tftp', file, reason: `gets ${file} over TFTP`, ...detail },
  }),
  dhcpIgnored: (where: Where, reason: string, detail: Partial<DhcpIgnoredDetail> = {}): BootEventInput => ({
    step: 'dhcp.ignored',
    ...where,
    detail: { type: 'DISCOVER', mode: 'proxy', reason, detail: reason, arch: 'bios', port: 67, ...detail },
  }),
  tftpStart: (where: Where, file: string): BootEventInput => ({ step: 'tftp.start', ...where, detail: { file, options: {} } }),
  tftpEnd: (where: Where, file: string, detail: Partial<TftpEndDetail> = {}): BootEventInput => ({ step: 'tftp.end', ...where, detail: { file, outcome: 'ok', bytes: 1024, ms: 10, ...detail } }),
};
