import test from 'ava';
import type { ClientInfo } from '../../src/boot/client.ts';
import { resolveBootTarget, type BootSettings, type BootTarget, type EfiFirmware } from '../../src/boot/decide.ts';
import { NO_MATCH, type Loader, type MachineMatch } from '../../src/boot/machine.ts';
import { classifyClient } from '../../src/dhcp/classify.ts';
import { Opt, u16 } from '../../src/dhcp/options.ts';
import { request, type ClientKind } from '../dhcp/fixtures.ts';
import type { Mac } from '../../src/net/mac.ts';

const BASE = 'http://10.0.0.1:8080';
const DEBIAN = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'];
const WITH_ARM = [...DEBIAN, 'ipxe-arm64.efi', 'snponly-arm64.efi'];
const SIGNED = [...DEBIAN, 'shimx64.efi', 'grubx64.efi'];
const ALL = [...SIGNED, 'grubaa64.efi'];

function settings(files: string[], efiFirmware: EfiFirmware = 'ipxe.efi', more: { uefiLoader?: Loader; dhcpMode?: BootSettings['dhcpMode']; tftpPort?: number | 'off' } = {}): BootSettings {
  const set = new Set(files);
  const tftpPort = more.tftpPort === 'off' ? undefined : (more.tftpPort ?? 69);
  return { baseUrl: BASE, efiFirmware, uefiLoader: more.uefiLoader ?? 'ipxe', dhcpMode: more.dhcpMode ?? 'full', tftpServer: '10.0.0.1', tftpPort, firmware: { has: (n) => set.has(n) } };
}

const says = (loader: Loader): MachineMatch => ({ kind: 'config', key: 'mac/52:54:00:00:00:01', loader });
const GRUB = says('grub');
const IPXE = says('ipxe');

function client(kind: ClientKind, arch?: number): ClientInfo {
  const p = request({ kind, mac: '52:54:00:00:00:01' as Mac, xid: 1 });
  if (arch !== undefined) p.options.set(Opt.CLIENT_ARCH, u16(arch));
  return classifyClient(p)!;
}

type Want = Pick<BootTarget, 'action'> & { file?: string; url?: string; code?: string; chain?: string[]; reason?: RegExp };

const table: [string, ClientInfo, BootSettings, Want, MachineMatch?][] = [
  ['BIOS → undionly.kpxe', client('bios'), settings(DEBIAN), { action: 'tftp', file: 'undionly.kpxe' }],
  ['UEFI x64 (7) → ipxe.efi', client('uefi7'), settings(DEBIAN), { action: 'tftp', file: 'ipxe.efi' }],
  ['UEFI x64 (9) like 7', client('uefi9'), settings(DEBIAN), { action: 'tftp', file: 'ipxe.efi' }],
  ['UEFI ia32 (6) never gets the x86-64 build: ignored, naming the build it needs', client('ia32'), settings(DEBIAN), { action: 'ignore', code: 'no-firmware', reason: /needs ipxe-ia32\.efi/ }],
  ['UEFI ia32 (6) with an ia32 build', client('ia32'), settings([...DEBIAN, 'ipxe-ia32.efi']), { action: 'tftp', file: 'ipxe-ia32.efi' }],
  ['HTTP Boot ia32 (15) never gets the x86-64 build', client('httpboot16', 15), settings(DEBIAN), { action: 'ignore', code: 'no-firmware', reason: /ipxe-ia32\.efi/ }],
  [
    'ProxyDHCP: a machine without any config is left alone',
    client('bios'),
    settings(DEBIAN, 'ipxe.efi', { dhcpMode: 'proxy' }),
    { action: 'ignore', code: 'no-config', reason: /^left alone: no config/ },
  ],
  ['ProxyDHCP: iPXE without any config is left alone too', client('ipxe-efi'), settings(DEBIAN, 'ipxe.efi', { dhcpMode: 'proxy' }), { action: 'ignore', code: 'no-config' }],
  [
    'ProxyDHCP: a machine with a config is answered',
    client('bios'),
    settings(DEBIAN, 'ipxe.efi', { dhcpMode: 'proxy' }),
    { action: 'tftp', file: 'undionly.kpxe' },
    { kind: 'config', key: 'default' },
  ],
  [
    'ProxyDHCP: a machine whose config is broken is answered (/ipxe says why)',
    client('ipxe-bios'),
    settings(DEBIAN, 'ipxe.efi', { dhcpMode: 'proxy' }),
    { action: 'ipxe-script' },
    { kind: 'broken', key: 'mac/52:54:00:00:00:01' },
  ],
  ['full DHCP: a machine without a config still gets an address and its loader', client('bios'), settings(DEBIAN), { action: 'tftp', file: 'undionly.kpxe' }],
  [
    'TFTP off: no TFTP file is handed out, and the reason says why',
    client('bios'),
    settings(DEBIAN, 'ipxe.efi', { tftpPort: 'off' }),
    { action: 'ignore', code: 'no-tftp', reason: /TFTP is off here \(--tftp-address off\)/ },
  ],
  [
    'TFTP on another port: firmware asks on 69 only',
    client('uefi7'),
    settings(DEBIAN, 'ipxe.efi', { tftpPort: 1069 }),
    { action: 'ignore', code: 'no-tftp', reason: /TFTP listens on port 1069 here/ },
  ],
  ['TFTP off: iPXE still gets its HTTP script', client('ipxe-bios'), settings(DEBIAN, 'ipxe.efi', { tftpPort: 'off' }), { action: 'ipxe-script' }],
  ['TFTP off: HTTP Boot still gets its loader over HTTP', client('httpboot16'), settings(DEBIAN, 'ipxe.efi', { tftpPort: 'off' }), { action: 'http-boot', file: 'ipxe.efi' }],
  ['UEFI x64 with snponly chosen', client('uefi7'), settings(DEBIAN, 'snponly.efi'), { action: 'tftp', file: 'snponly.efi' }],
  ['arm64 without GRUB → ignored, naming the file', client('arm64'), settings(DEBIAN), { action: 'ignore', code: 'no-firmware', reason: /needs grubaa64\.efi/ }],
  ['arm64 → GRUB, whatever --uefi-loader says', client('arm64'), settings(ALL), { action: 'tftp', file: 'grubaa64.efi', chain: ['grub/grub.cfg'], reason: /arm64 UEFI boots GRUB/ }],
  ['arm64 whose config says ipxe, with a build', client('arm64'), settings(WITH_ARM), { action: 'tftp', file: 'ipxe-arm64.efi' }, IPXE],
  ['arm64 whose config says ipxe, snponly chosen', client('arm64'), settings(WITH_ARM, 'snponly.efi'), { action: 'tftp', file: 'snponly-arm64.efi' }, IPXE],
  ['arm64 whose config says ipxe, without a build → ignored', client('arm64'), settings(ALL), { action: 'ignore', code: 'no-firmware' }, IPXE],
  [
    'arm64 in ProxyDHCP mode: its image knows our address, no warning',
    client('arm64'),
    settings(ALL, 'ipxe.efi', { dhcpMode: 'proxy' }),
    { action: 'tftp', file: 'grubaa64.efi', reason: /^(?!.*warning)/ },
    { kind: 'config', key: 'default' },
  ],
  ['x64 whose config says grub → shim', client('uefi7'), settings(SIGNED), { action: 'tftp', file: 'shimx64.efi', chain: ['grubx64.efi', 'grub/grub.cfg'], reason: /says "loader": "grub"/ }, GRUB],
  ['x64 (9) whose config says grub → shim', client('uefi9'), settings(SIGNED), { action: 'tftp', file: 'shimx64.efi' }, GRUB],
  [
    'x64 with --uefi-loader grub, config silent → shim',
    client('uefi7'),
    settings(SIGNED, 'ipxe.efi', { uefiLoader: 'grub' }),
    { action: 'tftp', file: 'shimx64.efi', reason: /--uefi-loader grub/ },
    { kind: 'config', key: 'default' },
  ],
  [
    'x64 with --uefi-loader grub, no config at all → shim, saying its grub.cfg stops',
    client('uefi7'),
    settings(SIGNED, 'ipxe.efi', { uefiLoader: 'grub' }),
    { action: 'tftp', file: 'shimx64.efi', reason: /grub\.cfg says so and stops/ },
  ],
  ['x64 whose config says ipxe beats --uefi-loader grub', client('uefi7'), settings(SIGNED, 'ipxe.efi', { uefiLoader: 'grub' }), { action: 'tftp', file: 'ipxe.efi', chain: [] }, IPXE],
  ['x64 config silent, default loader → ipxe.efi as before', client('uefi7'), settings(SIGNED), { action: 'tftp', file: 'ipxe.efi', chain: [] }, { kind: 'config', key: 'default' }],
  ['x64 grub without grubx64.efi → ignored, naming it', client('uefi7'), settings([...DEBIAN, 'shimx64.efi']), { action: 'ignore', code: 'no-firmware', reason: /needs grubx64\.efi/ }, GRUB],
  ['x64 grub without shim → ignored, never falls back to unsigned iPXE', client('uefi7'), settings(DEBIAN), { action: 'ignore', code: 'no-firmware', reason: /needs shimx64\.efi/ }, GRUB],
  [
    'x64 grub in ProxyDHCP mode: shim, with what the site DHCP server must hand out',
    client('uefi7'),
    settings(SIGNED, 'ipxe.efi', { dhcpMode: 'proxy' }),
    { action: 'tftp', file: 'shimx64.efi', reason: /must hand out next-server 10\.0\.0\.1/ },
    GRUB,
  ],
  ['BIOS whose config says grub keeps undionly.kpxe', client('bios'), settings(SIGNED), { action: 'tftp', file: 'undionly.kpxe' }, GRUB],
  ['iPXE whose config says grub still gets the script (it is already past the firmware)', client('ipxe-efi'), settings(SIGNED), { action: 'ipxe-script', url: `${BASE}/boot.ipxe` }, GRUB],
  ['HTTP Boot whose config says grub keeps ipxe.efi over HTTP (signed GRUB has no http)', client('httpboot16'), settings(SIGNED), { action: 'http-boot', file: 'ipxe.efi' }, GRUB],
  ['ia32 whose config says grub: no signed ia32 chain, and no x86-64 file either', client('ia32'), settings(SIGNED), { action: 'ignore', code: 'no-firmware' }, GRUB],
  ['arm32 (10) without a build → ignored', client('arm64', 10), settings(WITH_ARM), { action: 'ignore', code: 'no-firmware' }],
  ['HTTP Boot x64 (16) → /firmware/ipxe.efi', client('httpboot16'), settings(DEBIAN), { action: 'http-boot', url: `${BASE}/firmware/ipxe.efi`, file: 'ipxe.efi' }],
  ['HTTP Boot arm64 (19) without a build → ignored', client('httpboot19'), settings(DEBIAN), { action: 'ignore', code: 'no-firmware' }],
  ['HTTP Boot arm64 (19) with a build', client('httpboot19'), settings(WITH_ARM), { action: 'http-boot', url: `${BASE}/firmware/ipxe-arm64.efi` }],
  ['iPXE BIOS → boot.ipxe', client('ipxe-bios'), settings(DEBIAN), { action: 'ipxe-script', url: `${BASE}/boot.ipxe` }],
  ['iPXE EFI → boot.ipxe', client('ipxe-efi'), settings(DEBIAN), { action: 'ipxe-script', url: `${BASE}/boot.ipxe` }],
  ['iPXE by 175 only → boot.ipxe', client('ipxe-175-only'), settings(DEBIAN), { action: 'ipxe-script', url: `${BASE}/boot.ipxe` }],
  ['iPXE needs no firmware file', client('ipxe-efi'), settings([]), { action: 'ipxe-script', url: `${BASE}/boot.ipxe` }],
  ['no option 93 (udhcpc) → ignored', client('udhcpc'), settings(DEBIAN), { action: 'ignore', code: 'not-pxe' }],
  ['no option 93 (dhclient) → ignored', client('dhclient'), settings(DEBIAN), { action: 'ignore', code: 'not-pxe' }],
  ['unknown arch (2, Itanium) → ignored', client('bios', 2), settings(DEBIAN), { action: 'ignore', code: 'unsupported-arch' }],
  ['BIOS with undionly missing → ignored', client('bios'), settings(['ipxe.efi']), { action: 'ignore', code: 'no-firmware' }],
  ['UEFI with ipxe.efi missing → ignored, even if snponly exists', client('uefi7'), settings(['snponly.efi']), { action: 'ignore', code: 'no-firmware' }],
  ['HTTP Boot with the file missing → ignored', client('httpboot16'), settings(['undionly.kpxe']), { action: 'ignore', code: 'no-firmware' }],
];

for (const [name, c, s, want, machine] of table) {
  test(`decide: ${name}`, (t) => {
    const got = resolveBootTarget(c, s, machine ?? NO_MATCH);
    t.is(got.action, want.action);
    t.true(got.reason.length > 0);
    if (want.file) t.is((got as { file?: string }).file, want.file);
    if (want.url) t.is((got as { url?: string }).url, want.url);
    if (want.code) t.is((got as { code?: string }).code, want.code);
    if (want.chain) t.deepEqual((got as { chain?: string[] }).chain, want.chain);
    if (want.reason) t.regex(got.reason, want.reason);
    if (got.action === 'tftp' || got.action === 'http-boot') t.true(s.firmware.has(got.file), 'never a file that is not there');
    if (got.action === 'tftp') for (const f of got.chain.filter((x) => !x.startsWith('grub/'))) t.true(s.firmware.has(f), `the chain's ${f} is there too`);
  });
}

test('decide: the reason for a missing file uses the catalog explanation', (t) => {
  const s: BootSettings = { ...settings([]), firmware: { has: () => false, explain: (n) => `${n} fails its checksum` } };
  const got = resolveBootTarget(client('uefi7'), s, NO_MATCH);
  t.is(got.action, 'ignore');
  t.regex(got.reason, /ipxe\.efi fails its checksum/);
});

test('decide is pure: same input, same output, settings untouched', (t) => {
  const s = settings(DEBIAN);
  const c = client('bios');
  t.deepEqual(resolveBootTarget(c, s, NO_MATCH), resolveBootTarget(c, s, NO_MATCH));
});

const matches: [string, MachineMatch, RegExp][] = [
  ['a config answers', { kind: 'config', key: 'mac/52:54:00:00:00:01' }, /answers from mac\/52:54:00:00:00:01/],
  ['its config is broken', { kind: 'broken', key: 'default' }, /answers 500: default is broken/],
  ['no config matches', NO_MATCH, /no boot config matches it yet/],
];
for (const [name, machine, reason] of matches) {
  test(`decide: iPXE whose machine lookup says ${name}: the reason says what /ipxe will answer; the target carries the match`, (t) => {
    const got = resolveBootTarget(client('ipxe-bios'), settings(DEBIAN), machine);
    t.is(got.action, 'ipxe-script');
    t.regex(got.reason, reason);
    t.deepEqual(got.machine, machine);
  });
}

test('decide: the machine match never changes which file firmware gets', (t) => {
  for (const kind of ['bios', 'uefi7', 'httpboot16', 'arm64', 'udhcpc'] as const) {
    // A match without a loader: only a config that names one may change the loader.
    const none = resolveBootTarget(client(kind), settings(DEBIAN), NO_MATCH);
    const known = resolveBootTarget(client(kind), settings(DEBIAN), { kind: 'config', key: 'default' });
    t.deepEqual({ ...known, machine: NO_MATCH }, none, kind);
  }
});

test('decide: an iPXE that announces no HTTPS still gets the https:// script, with a warning in the reason; one that says nothing, or has HTTPS, gets none', (t) => {
  const https: BootSettings = { ...settings(DEBIAN), baseUrl: 'https://boot.example' };
  const noHttps = client('ipxe-175-only'); // 175 with HTTP, without HTTPS (Debian's build)
  const warned = resolveBootTarget(noHttps, https, NO_MATCH);
  t.is(warned.action, 'ipxe-script');
  t.is((warned as { url?: string }).url, 'https://boot.example/boot.ipxe');
  t.regex(warned.reason, /warning: this iPXE announces no HTTPS support/);
  t.notRegex(resolveBootTarget(noHttps, settings(DEBIAN), NO_MATCH).reason, /warning/, 'http:// base URL: nothing to warn about');
  const withHttps = { ...noHttps, ipxeFeatures: { http: true, https: true } };
  t.notRegex(resolveBootTarget(withHttps, https, NO_MATCH).reason, /warning/);
  const unknown = { ...noHttps, ipxeFeatures: undefined };
  t.notRegex(resolveBootTarget(unknown, https, NO_MATCH).reason, /warning/, 'no 175: nothing known, so nothing said');
});
