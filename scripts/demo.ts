/**
 * `sudo npm run demo`: watch a machine boot from bootcfg-appliance, on this computer, isolated.
 *
 * Creates a network namespace with a bridge, starts the appliance there on a copy of the example
 * data/ (the kernel and initrd it names are replaced by a small Debian kernel + busybox initrd,
 * built once into .cache/e2e), boots one qemu VM on that bridge, and prints the appliance's log
 * lines for that VM's MAC as they happen, then the line the booted VM prints. Everything is torn
 * down at the end, on Ctrl-C and on failure. Nothing touches the host's real network.
 *
 *   sudo npm run demo -- [--firmware bios|uefi] [--dhcp full|proxy] [--mac MAC] [--console]
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT, startAppliance, type RunningAppliance } from '../test/helpers/appliance.ts';
import { isRoot } from '../test/helpers/netns.ts';
import { ensureGuestAssets } from '../test/e2e/lib/assets.ts';
import { createLab, LAB, type Lab } from '../test/e2e/lib/lab.ts';
import { startDnsmasq, type Daemon } from '../test/e2e/lib/peers.ts';
import { startVm, type Firmware, type Vm } from '../test/e2e/lib/qemu.ts';
import { applianceArgs, BOOT_TIMEOUT_MS } from '../test/e2e/lib/scenario.ts';

const { values } = parseArgs({
  options: {
    firmware: { type: 'string', default: 'bios' },
    dhcp: { type: 'string', default: 'full' },
    mac: { type: 'string', default: '52:54:00:de:00:01' },
    console: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const USAGE = 'usage: sudo npm run demo -- [--firmware bios|uefi] [--dhcp full|proxy] [--mac MAC] [--console]\n';
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const firmware = values.firmware as Firmware;
const mode = values.dhcp as 'full' | 'proxy';
const mac = values.mac!.toLowerCase();
if (!['bios', 'uefi'].includes(firmware) || !['full', 'proxy'].includes(mode) || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) {
  process.stderr.write(USAGE);
  process.exit(2);
}
if (!isRoot) {
  process.stderr.write('The demo creates a network namespace, a bridge and a tap for the VM: run it as root (sudo npm run demo).\n');
  process.exit(2);
}

const tty = process.stdout.isTTY;
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => process.stdout.write(`${s}\n`);

/** Copies data/ and puts the cached guest wherever its boot configs point under /images. */
function prepareData(guest: { kernel: string; initrd: string }): { root: string; dataPath: string; imagesPath: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'bca-demo-'));
  const dataPath = path.join(root, 'data');
  const imagesPath = path.join(root, 'images');
  const example = path.join(PROJECT_ROOT, 'data');
  if (existsSync(example)) cpSync(example, dataPath, { recursive: true, filter: (src) => !src.includes(`${path.sep}state`) });
  mkdirSync(path.join(dataPath, 'boot'), { recursive: true });
  mkdirSync(imagesPath, { recursive: true });
  const place = (ref: string, source: string) => {
    const m = /^(?:\{\{base_url\}\})?\/?images\/(.+)$/.exec(ref);
    if (!m || m[1]!.includes('..')) return;
    const dest = path.join(imagesPath, m[1]!);
    if (existsSync(dest)) return;
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(source, dest);
  };
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          const cfg = JSON.parse(readFileSync(p, 'utf8')) as { kernel?: unknown; initrd?: unknown };
          if (typeof cfg.kernel === 'string') place(cfg.kernel, guest.kernel);
          if (Array.isArray(cfg.initrd)) for (const i of cfg.initrd) if (typeof i === 'string') place(i, guest.initrd);
        } catch {
          /* not a boot config; the appliance will say so */
        }
      }
    }
  };
  walk(path.join(dataPath, 'boot'));
  return { root, dataPath, imagesPath };
}

function describe(l: Record<string, unknown>): string {
  const extra = ['yiaddr', 'file', 'key', 'step'].filter((k) => typeof l[k] === 'string' && !String(l.msg).includes(String(l[k]))).map((k) => `${k}=${String(l[k])}`);
  const who = typeof l.component === 'string' ? `${l.component}: ` : '';
  return `${who}${String(l.msg)}${extra.length ? dim(`  ${extra.join(' ')}`) : ''}`;
}

let lab: Lab | undefined;
let app: RunningAppliance | undefined;
let site: Daemon | undefined;
let vm: Vm | undefined;
let dataRoot: string | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await vm?.kill().catch(() => undefined);
    await app?.stop().catch(() => undefined);
    await site?.stop().catch(() => undefined);
    await lab?.destroy().catch(() => undefined);
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    say(`\n${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  say(bold('bootcfg-appliance demo: one virtual machine network-boots from the appliance'));
  const guest = await ensureGuestAssets((m) => say(dim(`  guest: ${m}`)));
  say(`guest OS     Debian kernel ${guest.kernelRelease} + a busybox initrd that prints its kernel command line and MAC`);

  lab = await createLab({ withSite: mode === 'proxy' });
  say(`network      namespace ${lab.srv.name}, bridge ${LAB.bridge} ${LAB.server}/${LAB.prefix} (isolated from this host's network)`);
  if (mode === 'proxy') {
    site = await startDnsmasq(lab.site!, { iface: 'eth0', range: LAB.range });
    say(`site DHCP    dnsmasq at ${LAB.site} hands out addresses; the appliance answers as ProxyDHCP`);
  }

  const data = prepareData(guest);
  dataRoot = data.root;
  const args = applianceArgs(mode, data.dataPath, data.imagesPath);
  say(`appliance    bootcfg-appliance ${args.join(' ')}`);
  say(dim(`             (data/ copied to ${data.dataPath}; its kernel and initrd are the demo guest)`));
  app = await startAppliance(args, { ns: lab.srv, readyTimeoutMs: 30_000 });
  const ready = app.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('ready'));
  say(`             ${String(ready?.msg ?? 'ready')}`);

  const tap = await lab.tap();
  say(`machine      qemu, ${firmware === 'bios' ? 'SeaBIOS + iPXE ROM (e1000)' : 'OVMF UEFI native PXE (virtio-net)'}, MAC ${mac}; software emulation, so give it ~${firmware === 'bios' ? 30 : 45} s`);
  say('');
  vm = await startVm({ ns: lab.srv, tap, firmware, mac, name: `demo-${firmware}` });
  const t0 = vm.startedAt;
  const stamp = () => dim(`+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`);

  // The appliance's lines for this machine: by MAC, and by the address it got (TFTP knows only the IP).
  let seen = 0;
  const ips = new Set<string>();
  let consoleSeen = 0;
  const pump = () => {
    const lines = app!.lines;
    for (; seen < lines.length; seen++) {
      const l = lines[seen]!;
      if (l.mac === mac && typeof l.yiaddr === 'string' && l.yiaddr !== '0.0.0.0') ips.add(l.yiaddr);
      if (l.mac === mac && typeof l.ip === 'string') ips.add(l.ip);
      if (l.mac === mac || (typeof l.ip === 'string' && ips.has(l.ip))) say(`${stamp()}  appliance  ${describe(l)}`);
    }
    if (values.console) {
      const text = vm!.serial().split('\n');
      for (; consoleSeen < text.length - 1; consoleSeen++) {
        const line = text[consoleSeen]!.trim();
        if (line && !/^BOOTED /.test(line)) say(`${stamp()}  ${dim('console')}    ${dim(line)}`);
      }
    }
  };
  const timer = setInterval(pump, 100);
  try {
    const booted = await vm.waitBooted(BOOT_TIMEOUT_MS[firmware]);
    pump();
    say(`${stamp()}  ${bold('console')}    ${bold(`BOOTED cmdline=${booted.cmdline} mac=${booted.mac}`)}`);
    say('');
    say(`The machine ${booted.mac} booted the kernel and command line its config gave it, in ${booted.seconds.toFixed(1)} s.`);
    say(dim('Try: --firmware uefi, --dhcp proxy, --mac 52:54:00:c7:b6:64 (the example mac/ entry), --console.'));
    return 0;
  } catch (err) {
    pump();
    say(`\nThe machine did not boot: ${(err as Error).message}`);
    say(`--- its console (last lines; full log ${vm.logFile}) ---\n${vm.tail(30)}`);
    return 1;
  } finally {
    clearInterval(timer);
  }
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  say(dim('cleaning up: VM, appliance, namespaces'));
  await cleanup();
}
process.exit(code);
