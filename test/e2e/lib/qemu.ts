/**
 * Boots a qemu VM (TCG: no KVM here) whose only NIC is a tap inside a test namespace, with the
 * serial console captured. Two firmware set-ups, as a real lab has them:
 * - bios: SeaBIOS + the iPXE option ROM of Debian's ipxe-qemu on an e1000; iPXE's own screen is
 *   put on the serial port through SeaBIOS's sercon (`etc/sercon-port` = 0x3f8).
 * - uefi: OVMF with virtio-net-pci and no option ROM, so OVMF's native PXE stack runs.
 * At most VM_SLOTS VMs run at once on this machine, across every test process (lock files).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, createWriteStream, existsSync, mkdirSync, openSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Namespace } from '../../helpers/netns.ts';
import { BOOTED_RE, CACHE_DIR, lockIsStale } from './assets.ts';
import { onLines } from '../../helpers/lines.ts';

/**
 * bios and uefi as above; uefi-secboot: OVMF with Secure Boot enforced and Microsoft's keys
 * enrolled (q35 with SMM, secure flash); arm64: qemu-system-aarch64 -machine virt with AAVMF.
 */
export type Firmware = 'bios' | 'uefi' | 'uefi-secboot' | 'arm64';

export const OVMF_CODE = process.env.BCA_OVMF ?? '/usr/share/ovmf/OVMF.fd';
export const OVMF_SECBOOT_CODE = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_MS_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
export const AAVMF_CODE = '/usr/share/AAVMF/AAVMF_CODE.fd';
export const AAVMF_VARS = '/usr/share/AAVMF/AAVMF_VARS.fd';
export const IPXE_ROM_DIR = process.env.BCA_IPXE_ROMS ?? '/usr/lib/ipxe/qemu';
export const VM_SLOTS = Number(process.env.BCA_VM_SLOTS ?? 2);
export const LOG_DIR = path.join(CACHE_DIR, 'logs');

export interface VmOptions {
  ns: Namespace;
  /** A tap that already exists in ns (Topology.tap). */
  tap: string;
  firmware: Firmware;
  mac: string;
  /** SMBIOS type 1 UUID, for machine-specific uuid/ configs. */
  uuid?: string;
  /** Used for the serial log file name. */
  name: string;
  memoryMb?: number;
}

export interface Booted {
  cmdline: string;
  mac: string;
  /** Seconds from qemu's start to the BOOTED line on the console. */
  seconds: number;
  /** The whole console up to then (the guest prints its Secure Boot state before BOOTED). */
  console: string;
}

export interface Vm {
  readonly name: string;
  readonly pid: number | undefined;
  readonly logFile: string;
  readonly startedAt: number;
  /** Everything the serial console printed so far (escape sequences stripped). */
  serial(): string;
  /** The last `lines` lines of the console, for failure reports. */
  tail(lines?: number): string;
  /** Resolves when `re` appears on the console; rejects on timeout, when `failOn` appears first, or when qemu exits first. */
  waitFor(re: RegExp, timeoutMs: number, failOn?: RegExp): Promise<RegExpMatchArray>;
  /** Waits for the guest's `BOOTED cmdline=… mac=…` line; fails fast once the firmware has given up or the kernel panicked. */
  waitBooted(timeoutMs: number): Promise<Booted>;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after 3 s, by PID; frees the VM slot. Safe to call twice. */
  kill(): Promise<void>;
}

/**
 * Runs cmd so that it is SIGKILLed when this process dies in a way no exit hook sees (ava
 * SIGTERMs a worker on its global timeout): a VM left running would hold a core for minutes.
 * setpriv and ip netns exec both exec, so the child's PID is still the command's own.
 */
export function orphanSafe(cmd: string, args: string[]): [string, string[]] {
  return ['setpriv', ['--pdeathsig', 'KILL', cmd, ...args]];
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const gone = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
  if (!gone) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await exited;
  }
}

/** qemu argv for one VM; exported so the demo and bench print the same command. */
export function qemuArgs(o: VmOptions): string[] {
  const args = [
    '-name',
    o.name,
    '-accel',
    'tcg',
    '-m',
    String(o.memoryMb ?? 512),
    '-smp',
    '1',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    '-nodefaults',
    '-netdev',
    `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
  ];
  if (o.uuid) args.push('-smbios', `type=1,uuid=${o.uuid}`);
  if (o.firmware === 'bios') {
    args.push(
      '-device',
      `e1000,netdev=n0,mac=${o.mac},romfile=${path.join(IPXE_ROM_DIR, 'pxe-e1000.rom')},bootindex=0`,
      '-fw_cfg',
      `name=etc/sercon-port,file=${serconPortFile()}`,
      '-boot',
      'order=n,strict=on',
    );
  } else if (o.firmware === 'uefi') {
    args.push('-bios', OVMF_CODE, '-device', `virtio-net-pci,netdev=n0,mac=${o.mac},romfile=,bootindex=0`);
  } else if (o.firmware === 'uefi-secboot') {
    args.push(
      '-machine',
      'q35,smm=on',
      '-global',
      'driver=cfi.pflash01,property=secure,value=on',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_SECBOOT_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${varsCopy(o.name, OVMF_MS_VARS)}`,
      '-device',
      `virtio-net-pci,netdev=n0,mac=${o.mac},romfile=,bootindex=0`,
    );
  } else {
    args.push(
      '-machine',
      'virt',
      // cortex-a57: -cpu max costs the kernel ~5× the time under TCG.
      '-cpu',
      'cortex-a57',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${AAVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${varsCopy(o.name, AAVMF_VARS)}`,
      '-device',
      `virtio-net-pci,netdev=n0,mac=${o.mac},romfile=,bootindex=0`,
    );
  }
  return args;
}

/** The firmware's variable store is written by the firmware: each VM boots from a fresh copy of the template. */
function varsCopy(name: string, template: string): string {
  mkdirSync(LOG_DIR, { recursive: true });
  const copy = path.join(LOG_DIR, `${name}.vars.fd`);
  copyFileSync(template, copy);
  return copy;
}

/** The qemu binary for a firmware. */
export function qemuBinary(firmware: Firmware): string {
  return firmware === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64';
}

/** What each firmware needs on the host, by path, so a missing package is named before qemu runs. */
const FIRMWARE_FILES: Record<Firmware, [string, string][]> = {
  bios: [[path.join(IPXE_ROM_DIR, 'pxe-e1000.rom'), 'ipxe-qemu']],
  uefi: [[OVMF_CODE, 'ovmf']],
  'uefi-secboot': [
    [OVMF_SECBOOT_CODE, 'ovmf'],
    [OVMF_MS_VARS, 'ovmf'],
  ],
  arm64: [
    [AAVMF_CODE, 'qemu-efi-aarch64'],
    [AAVMF_VARS, 'qemu-efi-aarch64'],
    ['/usr/bin/qemu-system-aarch64', 'qemu-system-arm'],
  ],
};

/** SeaBIOS reads the port of its serial console from fw_cfg as a little-endian integer: 0x3f8 = COM1. */
function serconPortFile(): string {
  const f = path.join(CACHE_DIR, 'sercon-port');
  if (!existsSync(f)) {
    mkdirSync(CACHE_DIR, { recursive: true });
    writeFileSync(f, Buffer.from([0xf8, 0x03]));
  }
  return f;
}

// Firmware output is full of cursor movement and colour; tests grep text.
const ESCAPES = /\x1b(\[[0-9;?]*[A-Za-z]|[()][A-Za-z0-9]|[=>cDEHMNOZ78])/g;

function cleanConsole(text: string): string {
  return text.replace(ESCAPES, '').replace(/\r+\n/g, '\n').replace(/\r/g, '\n');
}

/**
 * Console lines after which no boot will follow: SeaBIOS found nothing to boot (iPXE exited),
 * OVMF's IPv4 PXE boot option failed (what follows, IPv6 PXE and HTTP Boot, is not what these
 * boots use and costs minutes of timeouts), the guest kernel panicked.
 */
export const FIRMWARE_GAVE_UP = /No bootable device|No bootable option or device was found|failed to (?:load|start) Boot[0-9A-F]+ "UEFI PXEv4[^\n]*|Kernel panic[^\n]*/;

const SLOT_DIR = path.join(CACHE_DIR, 'vm-slots');

/** Takes one of VM_SLOTS lock files (holding our PID); stale ones (dead holder) are reclaimed. */
export async function acquireVmSlot(timeoutMs = 15 * 60_000): Promise<() => void> {
  mkdirSync(SLOT_DIR, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (let i = 0; i < VM_SLOTS; i++) {
      const f = path.join(SLOT_DIR, `slot${i}`);
      try {
        const fd = openSync(f, 'wx');
        writeFileSync(fd, String(process.pid));
        closeSync(fd);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          rmSync(f, { force: true });
        };
      } catch {
        if (lockIsStale(f)) rmSync(f, { force: true });
      }
    }
    if (Date.now() > deadline) throw new Error(`no free VM slot (of ${VM_SLOTS}) within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts a VM inside opts.ns once a VM slot is free. The returned Vm is killed by kill() or when the namespace's Topology is destroyed. */
export async function startVm(o: VmOptions): Promise<Vm> {
  for (const [file, pkg] of FIRMWARE_FILES[o.firmware]) if (!existsSync(file)) throw new Error(`${file} missing: install Debian's ${pkg}`);
  const release = await acquireVmSlot();
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${o.name}.serial.log`);
  const out: WriteStream = createWriteStream(logFile);
  let child: ChildProcess;
  try {
    child = o.ns.spawn(...orphanSafe(qemuBinary(o.firmware), qemuArgs(o)), { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    release();
    throw err;
  }
  const startedAt = Date.now();
  // Cleaned as a whole, not per chunk: an escape sequence may straddle two chunks.
  let raw = '';
  let text = '';
  const waiters = new Set<() => void>();
  // A second copy with seconds since qemu's start on every line: where a slow boot spends its time.
  const timed: WriteStream = createWriteStream(logFile.replace(/\.log$/, '.timed.log'));
  let atLineStart = true;
  const onData = (chunk: Buffer) => {
    out.write(chunk);
    const stamp = `[${((Date.now() - startedAt) / 1000).toFixed(2).padStart(7)}] `;
    let piece = cleanConsole(chunk.toString('latin1'));
    if (atLineStart && piece) piece = stamp + piece;
    atLineStart = piece.endsWith('\n');
    timed.write(piece.replace(/\n(?=.)/g, `\n${stamp}`));
    raw += chunk.toString('latin1');
    text = cleanConsole(raw);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  // qemu's own messages, line by line; the fw_cfg name warning is expected (SeaBIOS reads exactly etc/sercon-port).
  child.stderr!.on(
    'data',
    onLines((line) => {
      if (!/etc\/sercon-port.*prefixed with "opt\/"/.test(line)) onData(Buffer.from(`\n[qemu] ${line}\n`));
    }),
  );
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      release();
      out.end();
      timed.end();
      for (const w of waiters) w();
      resolve(code ?? (signal ? -1 : null));
    }),
  );
  let exitedFlag = false;
  void exited.then(() => (exitedFlag = true));

  const waitFor = (re: RegExp, timeoutMs: number, failOn?: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(text);
        const dead = failOn ? failOn.exec(text) : null;
        if (m) {
          done();
          resolve(m);
        } else if (dead) {
          done();
          reject(new Error(`VM ${o.name}: the firmware gave up ("${dead[0].trim()}") before ${re} appeared on its console`));
        } else if (exitedFlag || child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`VM ${o.name} exited (${child.exitCode ?? child.signalCode}) before ${re} appeared on its console`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`VM ${o.name}: ${re} not on its console within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const vm: Vm = {
    name: o.name,
    pid: child.pid,
    logFile,
    startedAt,
    serial: () => text,
    tail: (lines = 40) =>
      text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .slice(-lines)
        .join('\n'),
    waitFor,
    async waitBooted(timeoutMs) {
      const m = await waitFor(BOOTED_RE, timeoutMs, FIRMWARE_GAVE_UP);
      return { cmdline: m[1]!.trim(), mac: m[2]!, seconds: (Date.now() - startedAt) / 1000, console: text };
    },
    exited,
    async kill() {
      await stopChild(child);
      release();
    },
  };
  return vm;
}
