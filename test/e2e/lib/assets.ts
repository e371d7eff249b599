/**
 * The guest the e2e boots run: Debian's own kernel (from the linux-image package that
 * linux-image-amd64 depends on, unpacked with dpkg-deb, never installed on the host) and a
 * small busybox-static initrd whose /init prints one greppable line on the serial console
 * and powers off. Built once into .cache/e2e (gitignored) and reused by every test, the
 * demo and bench/boot.
 */
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  copyFileSync,
  chmodSync,
  symlinkSync,
  openSync,
  closeSync,
  unlinkSync,
} from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { sh } from '../../helpers/netns.ts';
import { PROJECT_ROOT } from '../../helpers/appliance.ts';

export const CACHE_DIR = process.env.BCA_E2E_CACHE ?? path.join(PROJECT_ROOT, '.cache', 'e2e');

/** The line /init prints: `BOOTED cmdline=<…> mac=<…>`; tests match it with this. */
export const BOOTED_RE = /BOOTED cmdline=(.*) mac=([0-9a-f:]{17})\s*$/m;

/** The guest's CPU architecture: amd64 (SeaBIOS and OVMF VMs) or arm64 (AAVMF VMs). */
export type GuestArch = 'amd64' | 'arm64';

/**
 * Modules the guest needs for its NIC: e1000 (SeaBIOS + iPXE ROM VMs) and virtio-net (OVMF,
 * AAVMF). Dependencies are added from each module's own `depends=`.
 */
const WANTED_MODULES: Record<GuestArch, string[]> = { amd64: ['e1000', 'virtio_pci', 'virtio_net'], arm64: ['virtio_pci', 'virtio_net'] };

export interface GuestAssets {
  kernel: string;
  initrd: string;
  /** e.g. 6.1.0-56-amd64 */
  kernelRelease: string;
}

/** The /init of the guest. It waits for a NIC with a MAC, prints the line tests look for, and powers off so qemu exits. */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
mac=none
i=0
while [ $i -lt 100 ]; do
  for d in /sys/class/net/*; do
    n=\${d##*/}
    [ "$n" = lo ] && continue
    [ -r "$d/address" ] && mac=$(cat "$d/address") && break 2
  done
  i=$((i+1))
  sleep 0.1
done
echo "SECUREBOOT $(dmesg | grep -o 'secureboot: Secure boot [a-z]*' | head -n 1)"
echo "BOOTED cmdline=$(cat /proc/cmdline) mac=$mac"
sync
poweroff -f
`;

/** What the kernel's EFI stub logs about Secure Boot (`secureboot: Secure boot enabled`), as the guest's /init prints it. */
export const SECUREBOOT_RE = /^SECUREBOOT (.*)$/m;

function kernelPackage(depends: string, arch: GuestArch): string {
  const m = new RegExp(`Depends:\\s*(linux-image-[0-9][^\\s:]*-${arch})\\b`).exec(depends);
  if (!m) throw new Error(`no linux-image-<version>-${arch} dependency in: ${depends}`);
  return arch === 'amd64' ? m[1]! : `${m[1]!}:${arch}`;
}

/** Reads the depends= field of a module's .modinfo section (no kmod needed on the host). */
function moduleDepends(ko: string): string[] {
  const text = readFileSync(ko).toString('latin1');
  const m = /\0depends=([A-Za-z0-9_,-]*)\0/.exec(text);
  return m?.[1] ? m[1].split(',').filter(Boolean) : [];
}

function indexModules(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith('.ko')) out.set(entry.name.slice(0, -3).replaceAll('-', '_'), p);
      else if (/\.ko\.(xz|zst|gz)$/.test(entry.name)) throw new Error(`compressed module ${p}: busybox insmod cannot load it; decompress it in the asset builder first`);
    }
  };
  walk(root);
  return out;
}

/** Modules in load order: every dependency before its user. */
function moduleOrder(index: Map<string, string>, wanted: string[]): string[] {
  const order: string[] = [];
  const visit = (name: string, trail: string[]) => {
    if (order.includes(name)) return;
    if (trail.includes(name)) throw new Error(`module dependency cycle: ${[...trail, name].join(' → ')}`);
    const ko = index.get(name);
    if (!ko) throw new Error(`module ${name} not found in the kernel package`);
    for (const dep of moduleDepends(ko)) visit(dep, [...trail, name]);
    order.push(name);
  };
  for (const m of wanted) visit(m, []);
  return order;
}

async function cpioGzip(root: string, out: string): Promise<void> {
  const list = (await sh('sh', ['-c', `cd "${root}" && find . | LC_ALL=C sort`]))
    .trim()
    .split('\n')
    .filter((s) => s !== '.');
  const cpio = spawn('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  cpio.stdin.end(`${list.map((p) => p.replace(/^\.\//, '')).join('\n')}\n`);
  const done = new Promise<void>((resolve, reject) => cpio.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cpio exited ${code}`)))));
  await pipeline(cpio.stdout, createGzip({ level: 9 }), createWriteStream(out));
  await done;
}

export function pidAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a lock file (holding its owner's PID) can be taken over: its owner is dead, or it has
 * stayed empty for seconds (the owner died between creating it and writing its PID; a fresh
 * empty file is a lock being taken right now).
 */
export function lockIsStale(file: string): boolean {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return false; // gone already: the next attempt to create it decides
  }
  if (text) return !pidAlive(Number(text));
  try {
    return Date.now() - statSync(file).mtimeMs > 10_000;
  } catch {
    return false;
  }
}

/** A lock file so two test processes never build the cache at the same time. */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const lock = path.join(CACHE_DIR, '.build.lock');
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch {
      if (lockIsStale(lock)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`asset build lock ${lock} held for too long`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      /* gone */
    }
  }
}

const memo = new Map<GuestArch, Promise<GuestAssets>>();

/**
 * Returns the cached kernel and initrd, building them on first use (needs apt-get download,
 * dpkg-deb, cpio; arm64 also needs dpkg's arm64 architecture, which scripts/install.sh adds).
 */
export function ensureGuestAssets(log: (msg: string) => void = () => undefined, arch: GuestArch = 'amd64'): Promise<GuestAssets> {
  let p = memo.get(arch);
  if (!p) {
    p = withBuildLock(() => build(log, arch));
    memo.set(arch, p);
  }
  return p;
}

/** Downloads (once, into dir) the .deb whose name matches `re`; `pkg` names the package, or resolves it when given a function. */
async function debIn(dir: string, re: RegExp, pkg: () => Promise<string>, log: (msg: string) => void): Promise<string> {
  mkdirSync(dir, { recursive: true });
  let deb = readdirSync(dir).find((f) => re.test(f));
  if (deb) return path.join(dir, deb);
  let name = await pkg();
  log(`downloading ${name} (apt-get download; not installed)`);
  try {
    await sh('sh', ['-c', `cd "${dir}" && apt-get download -q "${name}"`]);
  } catch (err) {
    // Package lists older than the mirror name a version it no longer has: refresh once.
    log(`apt-get download failed (${(err as Error).message.split('\n')[0]}); apt-get update and retry`);
    await sh('apt-get', ['update', '-qq']);
    name = await pkg();
    await sh('sh', ['-c', `cd "${dir}" && apt-get download -q "${name}"`]);
  }
  deb = readdirSync(dir).find((f) => re.test(f));
  if (!deb) throw new Error(`apt-get download ${name} left no .deb in ${dir}`);
  return path.join(dir, deb);
}

async function build(log: (msg: string) => void, arch: GuestArch): Promise<GuestAssets> {
  // amd64 keeps the cache layout it always had; arm64 lives beside it.
  const cacheDir = arch === 'amd64' ? CACHE_DIR : path.join(CACHE_DIR, arch);
  mkdirSync(cacheDir, { recursive: true });
  const manifest = path.join(cacheDir, 'guest.json');
  if (existsSync(manifest)) {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as GuestAssets & { init: string };
    if (m.init === INIT && existsSync(m.kernel) && existsSync(m.initrd)) return { kernel: m.kernel, initrd: m.initrd, kernelRelease: m.kernelRelease };
  }

  const debDir = path.join(cacheDir, 'deb');
  const meta = arch === 'amd64' ? 'linux-image-amd64' : 'linux-image-arm64:arm64';
  const debPath = await debIn(debDir, new RegExp(`^linux-image-[0-9].*-${arch}_.*\\.deb$`), async () => kernelPackage(await sh('apt-cache', ['depends', meta]), arch), log);
  const deb = path.basename(debPath);

  const unpacked = path.join(cacheDir, 'kernel-pkg');
  rmSync(unpacked, { recursive: true, force: true });
  log(`unpacking ${deb}`);
  await sh('dpkg-deb', ['-x', debPath, unpacked]);
  const release = readdirSync(path.join(unpacked, 'lib', 'modules'))[0];
  if (!release) throw new Error(`no lib/modules/<release> in ${deb}`);
  const vmlinuz = path.join(unpacked, 'boot', `vmlinuz-${release}`);
  if (!existsSync(vmlinuz)) throw new Error(`no ${vmlinuz} in ${deb}`);

  const index = indexModules(path.join(unpacked, 'lib', 'modules', release));
  const order = moduleOrder(index, WANTED_MODULES[arch]);
  log(`initrd modules: ${order.join(' ')}`);

  const root = path.join(cacheDir, 'initrd-root');
  rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'lib/modules', 'tmp']) mkdirSync(path.join(root, d), { recursive: true });
  let busybox = '/bin/busybox';
  if (arch !== 'amd64') {
    const bbDeb = await debIn(debDir, new RegExp(`^busybox-static_.*_${arch}\\.deb$`), async () => `busybox-static:${arch}`, log);
    const bbRoot = path.join(cacheDir, 'busybox-pkg');
    rmSync(bbRoot, { recursive: true, force: true });
    await sh('dpkg-deb', ['-x', bbDeb, bbRoot]);
    busybox = path.join(bbRoot, 'bin', 'busybox');
  }
  if (!(await sh('file', ['-L', busybox]).catch(() => 'statically linked')).includes('statically linked')) {
    throw new Error(`${busybox} is not statically linked: install busybox-static`);
  }
  copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
  chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  symlinkSync('busybox', path.join(root, 'bin', 'sh'));
  for (const m of order) copyFileSync(index.get(m)!, path.join(root, 'lib', 'modules', `${m}.ko`));
  writeFileSync(path.join(root, 'lib', 'modules', 'order'), `${order.join('\n')}\n`);
  writeFileSync(path.join(root, 'init'), INIT, { mode: 0o755 });

  const kernel = path.join(cacheDir, 'vmlinuz');
  const initrd = path.join(cacheDir, 'initrd.gz');
  copyFileSync(vmlinuz, `${kernel}.tmp`);
  renameSync(`${kernel}.tmp`, kernel);
  await cpioGzip(root, `${initrd}.tmp`);
  renameSync(`${initrd}.tmp`, initrd);
  rmSync(root, { recursive: true, force: true });
  rmSync(unpacked, { recursive: true, force: true });
  log(`guest ready: ${kernel} (${statSync(kernel).size} B), ${initrd} (${statSync(initrd).size} B)`);

  const assets: GuestAssets = { kernel, initrd, kernelRelease: release };
  writeFileSync(manifest, JSON.stringify({ ...assets, init: INIT }, null, 2));
  return assets;
}
