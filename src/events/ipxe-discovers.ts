import type { Mac } from '../net/mac.ts';
import type { BootTimeline } from './timeline.ts';

/**
 * Calls `listener` for each full-mode DHCPDISCOVER from iPXE, as the timeline records it:
 * the moment iPXE starts IPv6 autoconfiguration, which --ipv6-ra-quench answers.
 */
export function ipxeDiscovers(timeline: Pick<BootTimeline, 'onEvent'>): (listener: (mac: Mac) => void) => () => void {
  return (listener) =>
    timeline.onEvent((mac, event) => {
      if (event.step === 'dhcp.request' && event.detail.mode === 'full' && event.detail.type === 'DISCOVER' && event.detail.ipxe) listener(mac);
    });
}
