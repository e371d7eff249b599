/**
 * The GRUB configs the TFTP server makes rather than reads: the dispatcher at grub/grub.cfg
 * (and the per-platform path GRUB tries first), and the per-machine config it hands over to,
 * rendered from the same boot config /ipxe serves. Other names under grub/ (command.lst,
 * grub.cfg-01-<mac>, …) are GRUB's optional probes and get a prompt file-not-found.
 */
import type { BootTimeline } from '../events/timeline.ts';
import type { Logger } from '../log.ts';
import { parseMacInput, type Mac } from '../net/mac.ts';
import { parseUuidInput, type Uuid } from '../net/uuid.ts';
import { GRUB_DISPATCHER, renderGrubConfig, renderGrubMiss } from '../render/grub-config.ts';
import { describeLookup, type Store } from '../store/store.ts';
import { ERR } from './packet.ts';
import type { Peer, TftpResolution } from './server.ts';
import { MemorySource } from './source.ts';

const DISPATCHER = /^grub\/(?:[a-z0-9_]+-efi\/)?grub\.cfg$/;
const MACHINE = /^grub\/boot\.cfg\?(.*)$/;

export interface GrubFilesDeps {
  store: Pick<Store, 'boot' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
  log: Logger;
  /** Kernel and initrd paths on this appliance (`/images/…`) are recognised against it. */
  baseUrl: string;
}

/** The machine the hand-over names; a value that does not parse is left out (and said), so the lookup falls back as /ipxe would not. */
export function grubQuery(query: string): { mac: Mac | undefined; uuid: Uuid | undefined; problems: string[] } {
  const params = new URLSearchParams(query);
  const problems: string[] = [];
  let mac: Mac | undefined;
  let uuid: Uuid | undefined;
  const macText = params.get('mac')?.trim();
  const uuidText = params.get('uuid')?.trim();
  if (macText) {
    const parsed = parseMacInput(macText, 'mac');
    if (parsed.ok) mac = parsed.mac;
    else problems.push(parsed.reason);
  }
  // Firmware without a real SMBIOS UUID reports all zeros or all ones (qemu's virt and q35 do): no UUID.
  if (uuidText && !/^[0-]+$|^[fF-]+$/.test(uuidText)) {
    const parsed = parseUuidInput(uuidText, 'uuid');
    if (parsed.ok) uuid = parsed.uuid;
    else problems.push(parsed.reason);
  }
  return { mac, uuid, problems };
}

function text(name: string, body: string): TftpResolution {
  return { ok: true, name, source: new MemorySource(Buffer.from(body)) };
}

/** Resolves the names this module owns; undefined for every other name (the file root answers those). */
export function grubFiles(deps: GrubFilesDeps): (rel: string, peer: Peer) => TftpResolution | undefined {
  return (rel, peer) => {
    if (!rel.startsWith('grub/')) return undefined;
    if (DISPATCHER.test(rel)) return text(rel, GRUB_DISPATCHER);
    const m = MACHINE.exec(rel);
    if (!m) return { ok: false, name: rel, code: ERR.FILE_NOT_FOUND, message: 'File not found', reason: 'optional GRUB file' };
    return machineConfig(rel, m[1]!, peer, deps);
  };
}

function machineConfig(rel: string, query: string, peer: Peer, deps: GrubFilesDeps): TftpResolution {
  const { store, timeline, log, baseUrl } = deps;
  const { mac, uuid, problems } = grubQuery(query);
  // GRUB carries no MAC on its TFTP requests: from here on this address's downloads are this machine's.
  if (mac) timeline.bindAddress(peer.address, mac);
  const result = store.boot({ mac, uuid });
  const key = result.decidedBy?.key;
  const file = result.decidedBy?.path;
  const who = { mac, uuid, ip: peer.address };
  if (!result.value) {
    const reason = [describeLookup(result, store.dataPath), ...problems].join('; ');
    log.warn({ ...who, key, file, step: 'grub.config' }, `grub config: ${result.decidedBy?.outcome === 'broken' ? 'broken' : 'no'} ${reason}`);
    timeline.record({ step: 'grub.config', ...who, detail: { via: 'tftp', found: false, key, file, reason } });
    return text(rel, renderGrubMiss(`${result.decidedBy?.outcome === 'broken' ? 'broken' : 'no'} ${reason}`));
  }
  const rendered = renderGrubConfig(result.value, { baseUrl, transport: 'tftp', machine: { mac, uuid }, key: key ?? 'default' });
  const trouble = [...problems, ...rendered.problems];
  const level = rendered.problems.length ? 'warn' : 'info';
  log[level](
    { ...who, key, file, kernel: rendered.kernel, step: 'grub.config' },
    `grub config for ${mac ?? peer.address}: ${key} (${file})${trouble.length ? `; warning: ${trouble.join('; ')}` : ''}`,
  );
  timeline.record({
    step: 'grub.config',
    ...who,
    detail: { via: 'tftp', found: true, key, file, kernel: rendered.kernel, initrds: rendered.initrds, reason: trouble.length ? trouble.join('; ') : undefined },
  });
  return text(rel, rendered.text);
}
