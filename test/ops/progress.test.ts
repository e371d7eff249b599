import test from 'ava';
import { assessBoot, completedBoots, filePath } from '../../src/events/progress.ts';
import type { BootEvent, BootStep } from '../../src/events/timeline.ts';

const MIN = 60_000;

/** Events as a producer might leave them, fields missing or odd: the rules must judge them all. */
function ev(step: BootStep, at: number, detail: Record<string, unknown> = {}): BootEvent {
  return { step, at, ip: undefined, detail } as unknown as BootEvent;
}

/** A BIOS boot through ProxyDHCP: PXE ROM → undionly.kpxe over TFTP → iPXE → HTTP. */
const SCRIPT = { status: 200, kernel: 'http://10.9.0.1:8080/images/vmlinuz', initrds: ['http://10.9.0.1:8080/images/initrd.img', '/images/extra.cpio'] };
const fullBoot: BootEvent[] = [
  ev('dhcp.request', 0, { type: 'DISCOVER', arch: 0 }),
  ev('dhcp.reply', 10, { file: 'undionly.kpxe' }),
  ev('tftp.start', 500, { file: 'undionly.kpxe' }),
  ev('tftp.end', 700, { file: 'undionly.kpxe', outcome: 'ok' }),
  ev('dhcp.request', 3000, { ipxe: true }),
  ev('dhcp.reply', 3010, { file: 'http://10.9.0.1:8080/boot.ipxe' }),
  ev('http.boot-script', 3100, { status: 200 }),
  ev('http.ipxe', 3200, SCRIPT),
  ev('http.image', 3300, { status: 200, path: '/images/vmlinuz' }),
  ev('http.image', 3400, { status: 200, path: '/images/initrd.img' }),
  ev('http.image', 3500, { status: 200, path: '/images/extra.cpio' }),
];

test('filePath matches absolute URLs and paths of the same file', (t) => {
  t.is(filePath('http://10.0.0.1:8080/images/vm%20linuz'), '/images/vm linuz');
  t.is(filePath('/images/initrd.img?x=1'), '/images/initrd.img');
  t.is(filePath('initrd.img'), '/initrd.img');
});

test('a boot completes once its script, kernel and every initrd were fetched', (t) => {
  t.deepEqual(completedBoots(fullBoot), [fullBoot.length - 1]);
  const p = assessBoot(fullBoot, 3500 + 10 * MIN);
  t.is(p.state, 'booted');
  t.deepEqual(p.missingFiles, []);
});

test('a boot missing one initrd does not complete, and stalls after a minute', (t) => {
  const partial = fullBoot.slice(0, -1);
  t.deepEqual(completedBoots(partial), []);
  t.is(assessBoot(partial, 3400 + 1000).state, 'booting');
  const p = assessBoot(partial, 3400 + MIN + 1);
  t.is(p.state, 'stalled');
  t.deepEqual(p.missingFiles, ['/images/extra.cpio']);
  t.regex(p.reason, /extra\.cpio was never fetched/);
});

test('a file fetched twice or an unrelated image counts the boot only once', (t) => {
  const events = [...fullBoot, ev('http.image', 3600, { status: 200, path: '/images/vmlinuz' }), ev('http.cloud', 9000, { status: 200 })];
  t.deepEqual(completedBoots(events), [fullBoot.length - 1]);
  t.is(assessBoot(events, 10 * MIN).state, 'booted');
});

test('a failed image download does not count as fetched', (t) => {
  const events = [...fullBoot.slice(0, -1), ev('http.image', 3500, { status: 404, path: '/images/extra.cpio' })];
  t.deepEqual(completedBoots(events), []);
  const p = assessBoot(events, 3600);
  t.is(p.state, 'failed');
  t.regex(p.reason, /extra\.cpio answered 404/);
});

test('each reboot that fetches everything again counts again', (t) => {
  const again = fullBoot.map((e) => ({ ...e, at: e.at + 10 * MIN }));
  t.is(completedBoots([...fullBoot, ...again]).length, 2);
});

test('a newer script replaces the files an earlier one was waiting for', (t) => {
  const events = [
    ev('http.ipxe', 0, { status: 200, kernel: '/images/a', initrds: ['/images/a.img'] }),
    ev('http.image', 1, { status: 200, path: '/images/a' }),
    ev('http.ipxe', 2, { status: 200, kernel: '/images/b', initrds: [] }),
    ev('http.image', 3, { status: 200, path: '/images/b' }),
  ];
  t.deepEqual(completedBoots(events), [3]);
});

test('DHCP answered but no TFTP within a minute is a stalled boot', (t) => {
  const events = fullBoot.slice(0, 2);
  t.is(assessBoot(events, 10 + MIN - 1).state, 'booting');
  const p = assessBoot(events, 10 + MIN + 1);
  t.is(p.state, 'stalled');
  t.regex(p.reason, /DHCP answered with undionly\.kpxe, but no TFTP or HTTP request followed/);
  t.true(p.expected.includes('tftp.start'));
});

test('DHCP answered with an HTTP URL expects HTTP, not TFTP', (t) => {
  const p = assessBoot(fullBoot.slice(0, 6), 3010 + 2 * MIN);
  t.is(p.state, 'stalled');
  t.regex(p.reason, /never fetched it over HTTP/);
  t.false(p.expected.includes('tftp.start'));
});

test('a TFTP transfer that never ends, and firmware that never comes back, are stalls', (t) => {
  t.regex(assessBoot(fullBoot.slice(0, 3), 500 + 2 * MIN).reason, /TFTP transfer of undionly\.kpxe started and never finished/);
  t.regex(assessBoot(fullBoot.slice(0, 4), 700 + 2 * MIN).reason, /never came back/);
});

test('/boot.ipxe without /ipxe is a stall; /ipxe answered 404 is a failure', (t) => {
  t.regex(assessBoot(fullBoot.slice(0, 7), 3100 + 2 * MIN).reason, /never chained to \/ipxe/);
  const missed = [...fullBoot.slice(0, 7), ev('http.ipxe', 3200, { status: 404, path: '/ipxe', reason: 'no boot config matched' })];
  const p = assessBoot(missed, 3300);
  t.is(p.state, 'failed');
  t.regex(p.reason, /\/ipxe answered 404: no boot config matched/);
});

test('a TFTP size probe aborted by the firmware is not a failure', (t) => {
  const probe = [...fullBoot.slice(0, 3), ev('tftp.end', 510, { file: 'undionly.kpxe', outcome: 'aborted by client' })];
  t.is(assessBoot(probe, 520).state, 'booting');
  const failed = [...fullBoot.slice(0, 3), ev('tftp.end', 510, { file: 'undionly.kpxe', outcome: 'timeout' })];
  t.is(assessBoot(failed, 520).state, 'failed');
});

test('an ignored DHCP request says why, and is never a stall', (t) => {
  const p = assessBoot([ev('dhcp.ignored', 0, { reason: 'no option 93' })], 10 * MIN);
  t.is(p.state, 'ignored');
  t.regex(p.reason, /no option 93/);
});

test('a machine that booted and then sends DHCP again is judged on its new attempt', (t) => {
  const events = [...fullBoot, ev('dhcp.request', 20 * MIN)];
  t.is(assessBoot(events, 20 * MIN + 1000).state, 'booting');
  t.is(assessBoot(events, 22 * MIN).state, 'stalled');
});

test('/ipxe that found no config is a failure that points at explain', (t) => {
  const events = [...fullBoot.slice(0, 7), ev('http.ipxe', 3200, { found: false })];
  const p = assessBoot(events, 3300);
  t.is(p.state, 'failed');
  t.regex(p.reason, /no boot config matched.*explain/);
  t.deepEqual(completedBoots(events), []);
});

test('a --base-url with a path prefix still matches the image paths the server sees', (t) => {
  const events = [
    ev('http.ipxe', 0, { kernel: 'http://proxy.example/bootcfg/images/vmlinuz', initrds: ['http://proxy.example/bootcfg/images/initrd.img'] }),
    ev('http.image', 1, { status: 200, path: '/images/vmlinuz' }),
    ev('http.image', 2, { status: 206, path: '/images/initrd.img' }),
  ];
  t.deepEqual(completedBoots(events), [2]);
});

test('an optional file TFTP does not have (autoexec.ipxe) is not a failure, only a stall if nothing follows', (t) => {
  const events = [...fullBoot.slice(0, 4), ev('tftp.start', 800, { file: 'autoexec.ipxe' }), ev('tftp.end', 801, { file: 'autoexec.ipxe', outcome: 'not-found' })];
  t.is(assessBoot(events, 900).state, 'booting');
  const p = assessBoot(events, 801 + 2 * MIN);
  t.is(p.state, 'stalled');
  t.regex(p.reason, /TFTP had no autoexec\.ipxe for it/);
});

/** UEFI with Secure Boot through the signed chain: shim → GRUB → its config → kernel and initrd over TFTP. */
const grubBoot: BootEvent[] = [
  ev('dhcp.request', 0, { type: 'DISCOVER', arch: 'efi-x64' }),
  ev('dhcp.reply', 10, { file: 'shimx64.efi' }),
  ev('tftp.end', 500, { file: 'shimx64.efi', outcome: 'ok' }),
  ev('tftp.end', 600, { file: 'revocations_sku.efi', outcome: 'not-found' }),
  ev('tftp.end', 900, { file: 'grubx64.efi', outcome: 'ok' }),
  ev('tftp.end', 1000, { file: 'grub/x86_64-efi/command.lst', outcome: 'not-found' }),
  ev('tftp.end', 1100, { file: 'grub/grub.cfg', outcome: 'ok' }),
  ev('grub.config', 1150, { via: 'tftp', found: true, key: 'mac/52:54:00:00:00:01', kernel: '/images/vmlinuz', initrds: ['/images/initrd.gz'] }),
  ev('tftp.end', 1200, { file: 'grub/boot.cfg?mac=52:54:00:00:00:01&uuid=', outcome: 'ok' }),
  ev('tftp.end', 2000, { file: 'images/vmlinuz', outcome: 'ok' }),
  ev('tftp.end', 2200, { file: 'images/initrd.gz', outcome: 'ok' }),
];

test('a GRUB boot completes once its config’s kernel and initrds came over TFTP; until then it says what is missing', (t) => {
  t.deepEqual(completedBoots(grubBoot), [grubBoot.length - 1]);
  t.is(assessBoot(grubBoot, 2200 + 10 * MIN).state, 'booted');
  const half = grubBoot.slice(0, -1);
  const p = assessBoot(half, 2000 + 2 * MIN);
  t.is(p.state, 'stalled');
  t.deepEqual(p.missingFiles, ['/images/initrd.gz']);
  t.regex(p.reason, /its GRUB config was served, but \/images\/initrd\.gz was never fetched/);
  const none = [...grubBoot.slice(0, 7), ev('grub.config', 1150, { via: 'tftp', found: false, reason: 'no boot config for mac=…' })];
  t.is(assessBoot(none, 1150 + 10).state, 'failed');
});

test('a boot that goes quiet after its loader says which link of the chain never came, and names Secure Boot after unsigned iPXE', (t) => {
  const after = (file: string) => assessBoot([ev('dhcp.reply', 0, { file }), ev('tftp.end', 100, { file, outcome: 'ok' })], 100 + 2 * MIN).reason;
  t.regex(after('ipxe.efi'), /ipxe\.efi was sent, but the firmware never came back after the NBP.*Secure Boot.*"loader": "grub"/);
  t.regex(after('snponly.efi'), /refuses the unsigned snponly\.efi/);
  t.regex(after('shimx64.efi'), /shim never fetched GRUB from here/);
  t.regex(after('grubx64.efi'), /GRUB never asked for its config here \(beside a site DHCP server/);
  t.regex(after('undionly.kpxe'), /undionly\.kpxe was sent over TFTP, but the machine never came back/);
  const httpBoot = assessBoot([ev('dhcp.reply', 0, { file: 'http://10.0.0.1:8080/firmware/ipxe.efi' }), ev('http.image', 100, { status: 200, path: '/firmware/ipxe.efi' })], 100 + 2 * MIN);
  t.is(httpBoot.state, 'stalled');
  t.regex(httpBoot.reason, /never came back after the NBP/);
});
