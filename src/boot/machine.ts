/**
 * What the store knows of a machine when DHCP decides, reduced to what the decision needs:
 * whether a boot config answers it and which one. The DHCP pipeline looks the machine up
 * (MAC from chaddr, SMBIOS UUID from option 97; uuid → mac → default, as /ipxe does).
 */
/** The boot loader a UEFI machine is sent to: iPXE (unsigned) or the signed shim → GRUB chain. */
export type Loader = 'ipxe' | 'grub';

export type MachineMatch =
  /** A boot config answers: `key` is the store key (`uuid/…`, `mac/…`, `default`); `loader` when the config names one. */
  | { kind: 'config'; key: string; loader?: Loader | undefined }
  /** The config meant for this machine is broken (and never parsed): /ipxe answers 500. */
  | { kind: 'broken'; key: string }
  /** No config answers this machine. */
  | { kind: 'none' };

export const NO_MATCH: MachineMatch = { kind: 'none' };

/** The part of a store lookup (store/store.ts LookupResult) a match is made from. */
export interface LookupOutcome {
  value: { loader?: Loader | undefined } | undefined;
  decidedBy?: { key: string; outcome: 'hit' | 'miss' | 'broken' } | undefined;
}

export function machineMatch(result: LookupOutcome): MachineMatch {
  const step = result.decidedBy;
  if (!step) return NO_MATCH;
  if (result.value !== undefined) return result.value.loader ? { kind: 'config', key: step.key, loader: result.value.loader } : { kind: 'config', key: step.key };
  return step.outcome === 'broken' ? { kind: 'broken', key: step.key } : NO_MATCH;
}
