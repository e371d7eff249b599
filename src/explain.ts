/**
 * `explain`: for one machine, which boot and cloud file would answer and why (every lookup
 * that missed, in order), and what DHCP would hand it depending on the firmware it boots
 * with. The answers come from the same code the running services use (the store's lookup,
 * renderIpxeScript, resolveBootTarget), so explain cannot disagree with a real boot.
 */
import type { ArchName, ClientInfo } from './boot/client.ts';
import { bootFileOf, resolveBootTarget, type BootSettings } from './boot/decide.ts';
import type { DhcpMode } from './config.ts';
import { machineMatch, type MachineMatch } from './boot/machine.ts';
import type { Mac } from './net/mac.ts';
import type { Uuid } from './net/uuid.ts';
import { renderGrubConfig } from './render/grub-config.ts';
import { renderBoot } from './render/ipxe-script.ts';
import { describeLookup, type LookupResult, type LookupStep, type Store, type StoreProblem } from './store/store.ts';
import { describeLoser } from './store/matchbox.ts';
import type { MatchboxStore } from './store/matchbox-store.ts';

/** The firmware a machine may boot with, as DHCP sees each one. */
export interface FirmwareProfile {
  id: string;
  label: string;
  arch: number;
  archName: ArchName;
  ipxe: boolean;
  httpBoot: boolean;
  vendorClass: string;
}

export const FIRMWARE_PROFILES: readonly FirmwareProfile[] = [
  { id: 'bios', label: 'BIOS PXE ROM', arch: 0, archName: 'bios', ipxe: false, httpBoot: false, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' },
  { id: 'efi-x64', label: 'UEFI x64 PXE', arch: 7, archName: 'efi-x64', ipxe: false, httpBoot: false, vendorClass: 'PXEClient:Arch:00007:UNDI:003000' },
  { id: 'efi-arm64', label: 'UEFI arm64 PXE', arch: 11, archName: 'efi-arm64', ipxe: false, httpBoot: false, vendorClass: 'PXEClient:Arch:00011:UNDI:003000' },
  { id: 'http-x64', label: 'UEFI x64 HTTP Boot', arch: 16, archName: 'http-x64', ipxe: false, httpBoot: true, vendorClass: 'HTTPClient:Arch:00016:UNDI:003000' },
  { id: 'ipxe', label: 'iPXE (loaded, or in the NIC ROM)', arch: 0, archName: 'bios', ipxe: true, httpBoot: false, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' },
];

export interface DhcpAnswer {
  firmware: string;
  label: string;
  arch: number;
  action: 'tftp' | 'ipxe-script' | 'http-boot' | 'ignore';
  /** What goes into BOOTP `file` / option 67 (a TFTP name or a URL); undefined when ignored. */
  bootFile: string | undefined;
  /** The loader chain over TFTP: the NBP, then what it fetches (shim → GRUB → grub.cfg); empty otherwise. */
  chain: string[];
  /** Which exchange carries it in the configured DHCP mode. */
  via: string;
  reason: string;
}

export interface LookupExplanation {
  /** The file that answers (or is broken and stops the lookup); null when every step missed. */
  answeredBy: LookupStep | null;
  steps: LookupStep[];
  /** The one-line form the logs and 404 bodies use. */
  summary: string;
}

/** How matchbox's groups judged the machine: the winner, and why each other group lost. */
export interface GroupsExplanation {
  labels: Record<string, string>;
  winner: string | null;
  losers: string[];
}

export interface Explanation {
  mac: Mac | null;
  uuid: Uuid | null;
  dataPath: string;
  /** Present when --data-path holds matchbox groups. */
  groups: GroupsExplanation | null;
  boot: LookupExplanation & {
    /** The script /ipxe would serve, when a config answers. */
    script: string | null;
    /** The config GRUB would get over TFTP (grub/boot.cfg), when a config answers. */
    grub: string | null;
    kernel: string | null;
    initrds: string[];
  };
  cloud: LookupExplanation;
  dhcpMode: DhcpMode;
  dhcp: DhcpAnswer[];
  /** Data files the store rejects right now: one of them may be the file the operator expected to answer. */
  problems: StoreProblem[];
}

export interface ExplainInput {
  mac: Mac | undefined;
  uuid: Uuid | undefined;
  store: Pick<Store, 'boot' | 'cloud' | 'problems' | 'dataPath'>;
  settings: BootSettings;
  dhcpMode: DhcpMode;
  /** The address clients are sent to for TFTP (siaddr); shown in the advice for --dhcp off. */
  serverAddress: string | undefined;
  /** matchbox's groups, when the data path has them; `labels` are extra ones (--label k=v) beside mac and uuid. */
  matchbox?: Pick<MatchboxStore, 'selectGroup' | 'hasData'> | undefined;
  labels?: Record<string, string> | undefined;
}

function groupsExplanation(input: ExplainInput): GroupsExplanation | null {
  if (!input.matchbox?.hasData()) return null;
  const labels: Record<string, string> = { ...input.labels };
  if (input.mac) labels.mac = input.mac;
  if (input.uuid) labels.uuid = input.uuid;
  const selection = input.matchbox.selectGroup(labels);
  return { labels, winner: selection.group ? `groups/${selection.group.id}` : null, losers: selection.losers.map(describeLoser) };
}

function lookupExplanation(result: LookupResult<unknown>, dataPath: string): LookupExplanation {
  return { answeredBy: result.decidedBy ?? null, steps: result.steps, summary: describeLookup(result, dataPath) };
}

function via(profile: FirmwareProfile, action: DhcpAnswer['action'], mode: DhcpMode, serverAddress: string | undefined, bootFile: string | undefined): string {
  if (action === 'ignore') return 'no answer: the request is left to other servers';
  if (mode === 'full') return 'the DHCP OFFER and ACK, with an address from the pool';
  if (mode === 'off') {
    const next = action === 'tftp' ? `next-server ${serverAddress ?? '<this host>'}, ` : '';
    return `nothing (--dhcp off): the site's DHCP server must hand out ${next}file ${bootFile}`;
  }
  if (profile.ipxe) return 'the ProxyDHCP offer on port 67 (EFI iPXE asks the PXE boot server on 4011)';
  if (profile.httpBoot) return 'the ProxyDHCP offer on port 67, with option 60 HTTPClient';
  if (profile.archName === 'bios') return 'the ProxyDHCP offer on port 67 (option 43: take the file from this offer)';
  return "the PXE boot server on port 4011, asked after the site's DHCP server answered (UEFI always asks there)";
}

/** What each kind of firmware would be handed, from the pure boot decision. */
export function dhcpAnswers(input: Pick<ExplainInput, 'mac' | 'uuid' | 'settings' | 'dhcpMode' | 'serverAddress'>, machine: MachineMatch): DhcpAnswer[] {
  return FIRMWARE_PROFILES.map((profile) => {
    const client: ClientInfo = {
      mac: input.mac ?? ('00:00:00:00:00:00' as Mac),
      uuid: input.uuid,
      guid: undefined,
      arch: profile.arch,
      archName: profile.archName,
      ipxe: profile.ipxe,
      httpBoot: profile.httpBoot,
      vendorClass: profile.vendorClass,
      ipxeFeatures: profile.ipxe ? { http: true, https: false } : undefined,
      hostname: undefined,
    };
    const target = resolveBootTarget(client, input.settings, machine);
    const bootFile = target.action === 'ignore' ? undefined : bootFileOf(target);
    return {
      firmware: profile.id,
      label: profile.label,
      arch: profile.arch,
      action: target.action,
      bootFile,
      chain: target.action === 'tftp' && target.chain.length ? [target.file, ...target.chain] : [],
      via: via(profile, target.action, input.dhcpMode, input.serverAddress, bootFile),
      reason: target.reason,
    };
  });
}

export function explain(input: ExplainInput): Explanation {
  const query = { mac: input.mac, uuid: input.uuid, labels: input.labels && { ...input.labels, ...(input.mac ? { mac: input.mac } : {}), ...(input.uuid ? { uuid: input.uuid } : {}) } };
  const boot = input.store.boot(query);
  const cloud = input.store.cloud(query);
  const rendered = boot.value ? renderBoot(boot.value, input.settings.baseUrl) : undefined;
  return {
    mac: input.mac ?? null,
    uuid: input.uuid ?? null,
    dataPath: input.store.dataPath,
    groups: groupsExplanation(input),
    boot: {
      ...lookupExplanation(boot, input.store.dataPath),
      script: rendered?.script ?? null,
      grub: boot.value ? renderGrubConfig(boot.value, { baseUrl: input.settings.baseUrl, transport: 'tftp', machine: query, key: boot.decidedBy?.key ?? 'default' }).text : null,
      kernel: rendered?.kernelUrl ?? null,
      initrds: rendered?.initrdUrls ?? [],
    },
    cloud: lookupExplanation(cloud, input.store.dataPath),
    dhcpMode: input.dhcpMode,
    dhcp: dhcpAnswers(input, machineMatch(boot)),
    problems: input.store.problems(),
  };
}

function describeStep(kind: string, s: LookupStep): string {
  const where = `${kind}/${s.key}`;
  if (s.outcome === 'miss') return `  miss    ${where}: no file`;
  if (s.outcome === 'broken') return `  BROKEN  ${where}: ${s.path}: ${s.problem} (the lookup stops here, it does not fall back)`;
  return `  hit     ${where}: ${s.path}${s.stale ? ` (last good version; the file on disk is broken: ${s.problem})` : ''}`;
}

function describeKind(kind: 'boot' | 'cloud', e: LookupExplanation): string[] {
  const lines = [`${kind} config:`];
  for (const s of e.steps) lines.push(describeStep(kind, s));
  if (!e.answeredBy) lines.push(`  => no ${kind} config matches: /${kind === 'boot' ? 'ipxe' : 'cloud'} answers 404`);
  else if (e.answeredBy.outcome === 'broken') lines.push(`  => ${e.answeredBy.path} is broken: /${kind === 'boot' ? 'ipxe' : 'cloud'} answers 500 until it is fixed`);
  else lines.push(`  => answered by ${e.answeredBy.path}`);
  return lines;
}

/** The text `bootcfg-appliance explain` prints. */
export function formatExplanation(e: Explanation): string {
  const who = [e.mac ? `mac ${e.mac}` : '', e.uuid ? `uuid ${e.uuid}` : ''].filter(Boolean).join(', ');
  const lines = [`Machine: ${who || '(no mac or uuid: only default applies)'}`, `Data: ${e.dataPath}`, ''];
  if (e.groups) {
    const labels = Object.entries(e.groups.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(`matchbox groups (labels ${labels || 'none'}):`, `  => ${e.groups.winner ? `${e.groups.winner} wins` : 'no group matches'}`);
    for (const l of e.groups.losers) lines.push(`  lost    ${l}`);
    lines.push('');
  }
  lines.push(...describeKind('boot', e.boot));
  if (e.boot.script) {
    lines.push('  script served by /ipxe:');
    for (const l of e.boot.script.trimEnd().split('\n')) lines.push(`    ${l}`);
  }
  if (e.boot.grub && e.dhcp.some((d) => d.chain.length)) {
    lines.push('  config served to GRUB over TFTP (grub/boot.cfg):');
    for (const l of e.boot.grub.trimEnd().split('\n')) lines.push(`    ${l}`);
  }
  lines.push('', ...describeKind('cloud', e.cloud), '', `DHCP (--dhcp ${e.dhcpMode}), by firmware:`);
  const width = Math.max(...e.dhcp.map((d) => d.label.length));
  for (const d of e.dhcp) {
    const what = d.action === 'ignore' ? 'ignored' : `${d.action === 'tftp' ? 'TFTP' : 'HTTP'} ${d.chain.length ? d.chain.join(' → ') : d.bootFile}`;
    const pad = ' '.repeat(width);
    lines.push(`  ${d.label.padEnd(width)}  ${what}`, `  ${pad}  via: ${d.via}`, `  ${pad}  why: ${d.reason}`);
  }
  if (e.problems.length) {
    lines.push('', 'Rejected data files (fix them, or they never answer):');
    for (const p of e.problems) lines.push(`  ${p.path}: ${p.reason}${p.lastGoodServing ? ' (its last good version serves)' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
