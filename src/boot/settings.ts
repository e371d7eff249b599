import type { AppConfig } from '../config.ts';
import type { BootSettings } from './decide.ts';
import type { FirmwareCatalog } from './firmware.ts';

/** The boot decision's settings: plain config plus the catalog's `has`, so decide stays pure. DHCP, the API and `explain` share it. */
export function bootSettingsFor(config: AppConfig, firmware: FirmwareCatalog): BootSettings {
  return {
    baseUrl: config.baseUrl,
    efiFirmware: config.efiFirmware,
    firmware: { has: (name) => firmware.has(name), explain: (name) => firmware.explain(name) },
  };
}
