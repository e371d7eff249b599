/**
 * What every e2e scenario does: start the appliance as a user would (the CLI, --iface on the
 * lab bridge, a data dir written by the test, kernel and initrd under an images dir), boot VMs
 * on taps of that bridge, and check the console line. On any failure the error carries the
 * serial tail and the appliance's (and peers') logs, so a red CI run says what happened.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAppliance, type RunningAppliance } from '../../helpers/appliance.ts';
import type { GuestAssets } from './assets.ts';
import { LAB, type Lab } from './lab.ts';
import { startVm, type Booted, type Firmware, type Vm } from './qemu.ts';
import { FIRMWARE_DIR } from './reference.ts';

/** Per-boot budgets; a TCG boot here takes ~30 s (BIOS) to ~40 s (UEFI) idle, and up to ~3× that on a loaded machine. */
export const BOOT_TIMEOUT_MS: Record<Firmware, number> = {
  bios: Number(process.env.BCA_BIOS_TIMEOUT_MS ?? 180_000),
  uefi: Number(process.env.BCA_UEFI_TIMEOUT_MS ?? 300_000),
  'uefi-secboot': Number(process.env.BCA_UEFI_TIMEOUT_MS ?? 300_000),
  arm64: Number(process.env.BCA_ARM64_TIMEOUT_MS ?? 300_000),
};

export function token(): string {
  return randomBytes(8).toString('hex');
}

/** A locally administered MAC, distinct per call. */
export function randomMac(): string {
  const b = randomBytes(3);
  return `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

export interface BootEntry {
  kernel: string;
  initrd: string[];
  cmdline: Record<string, string | true> | string;
  loader?: 'ipxe' | 'grub';
}

/**
 * The guest's fixed kernel arguments: its console on the serial port, and `edd=off` because the
 * kernel's BIOS disk probe costs ~6 s under TCG with SeaBIOS + iPXE and these VMs have no disk.
 */
export const GUEST_ARGS = 'console=ttyS0 quiet edd=off';

/** A boot config that boots the cached guest and carries `tok` (and a label) on its command line. */
export function guestConfig(tok: string, label = 'default'): BootEntry {
  return {
    kernel: '/images/vmlinuz',
    initrd: ['/images/initrd.gz'],
    cmdline: { console: 'ttyS0', quiet: true, edd: 'off', 'bca.token': tok, 'bca.entry': label },
  };
}

export interface DataSpec {
  default?: BootEntry;
  mac?: Record<string, BootEntry>;
  uuid?: Record<string, BootEntry>;
}

/** Writes <dir>/data/boot/{default,mac/*,uuid/*}.json and <dir>/images/{vmlinuz,initrd.gz}. */
export function writeDataDir(guest: GuestAssets, spec: DataSpec): { root: string; dataPath: string; imagesPath: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'bca-e2e-'));
  const dataPath = path.join(root, 'data');
  const imagesPath = path.join(root, 'images');
  mkdirSync(path.join(dataPath, 'boot', 'mac'), { recursive: true });
  mkdirSync(path.join(dataPath, 'boot', 'uuid'), { recursive: true });
  mkdirSync(imagesPath, { recursive: true });
  if (spec.default) writeFileSync(path.join(dataPath, 'boot', 'default.json'), JSON.stringify(spec.default, null, 2));
  for (const [mac, cfg] of Object.entries(spec.mac ?? {})) writeFileSync(path.join(dataPath, 'boot', 'mac', `${mac}.json`), JSON.stringify(cfg, null, 2));
  for (const [uuid, cfg] of Object.entries(spec.uuid ?? {})) writeFileSync(path.join(dataPath, 'boot', 'uuid', `${uuid}.json`), JSON.stringify(cfg, null, 2));
  copyFileSync(guest.kernel, path.join(imagesPath, 'vmlinuz'));
  copyFileSync(guest.initrd, path.join(imagesPath, 'initrd.gz'));
  return { root, dataPath, imagesPath };
}

export interface OurServer {
  app: RunningAppliance;
  dataPath: string;
  /** The appliance's log lines as text (JSON per line), for failure reports. */
  log(): string;
  stop(): Promise<void>;
}

/** The CLI flags a user would pass on this lab. */
export function applianceArgs(mode: 'full' | 'proxy', dataPath: string, imagesPath: string): string[] {
  const args = ['--iface', LAB.bridge, '--dhcp', mode, '--address', `${LAB.server}:${LAB.httpPort}`, '--data-path', dataPath, '--images-path', imagesPath, '--firmware-path', FIRMWARE_DIR];
  if (mode === 'full') args.push('--dhcp-range', `${LAB.range.start},${LAB.range.end}`);
  return args;
}

export async function startOurs(lab: Lab, guest: GuestAssets, mode: 'full' | 'proxy', spec: DataSpec, extraArgs: string[] = []): Promise<OurServer> {
  const dir = writeDataDir(guest, spec);
  let app: RunningAppliance;
  try {
    app = await startAppliance([...applianceArgs(mode, dir.dataPath, dir.imagesPath), ...extraArgs], { ns: lab.srv, readyTimeoutMs: 30_000 });
  } catch (err) {
    rmSync(dir.root, { recursive: true, force: true });
    throw err;
  }
  return {
    app,
    dataPath: dir.dataPath,
    log: () => app.lines.map((l) => JSON.stringify(l)).join('\n') + (app.stderr() ? `\n--- stderr ---\n${app.stderr()}` : ''),
    async stop() {
      await app.stop();
      rmSync(dir.root, { recursive: true, force: true });
    },
  };
}

export interface BootRequest {
  lab: Lab;
  firmware: Firmware;
  mac: string;
  uuid?: string;
  name: string;
  /** Logs to attach when the boot fails (appliance, dnsmasq, nginx). */
  logs: () => string;
}

/** Boots one VM to the BOOTED line, kills it, and returns what the guest printed; a failure carries console tail and logs. */
export async function bootOnce(req: BootRequest): Promise<Booted> {
  const tap = await req.lab.tap();
  let vm: Vm | undefined;
  try {
    vm = await startVm({ ns: req.lab.srv, tap, firmware: req.firmware, mac: req.mac, uuid: req.uuid, name: req.name });
    return await vm.waitBooted(BOOT_TIMEOUT_MS[req.firmware]);
  } catch (err) {
    const tail = vm ? vm.tail(50) : '(VM did not start)';
    const logs = req.logs().split('\n').slice(-120).join('\n');
    throw new Error(`${(err as Error).message}\n--- serial console of ${req.name} (last lines; full log ${vm?.logFile}) ---\n${tail}\n--- server logs (last lines) ---\n${logs}`);
  } finally {
    await vm?.kill();
  }
}

/** Key/value pairs of a kernel command line (bare flags map to ''). */
export function parseCmdline(cmdline: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of cmdline.split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf('=');
    out.set(eq < 0 ? word : word.slice(0, eq), eq < 0 ? '' : word.slice(eq + 1));
  }
  return out;
}

export interface MachineView {
  state: string;
  steps: string[];
}

/** What the appliance's operator API (/api/machines/:mac) recorded for one machine, read from inside the lab. */
export async function machineView(lab: Lab, mac: string): Promise<MachineView> {
  const body = await lab.srv.exec('curl', ['-sS', '--max-time', '5', `http://${LAB.server}:${LAB.httpPort}/api/machines/${mac}`]);
  const json = JSON.parse(body) as { state?: unknown; events?: { step?: unknown }[] };
  return {
    state: String(json.state),
    steps: (json.events ?? []).map((e) => String(e.step)),
  };
}
