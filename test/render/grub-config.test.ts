import test from 'ava';
import { cmdlineWords, GRUB_DISPATCHER, grubWord, renderGrubConfig, renderGrubMiss } from '../../src/render/grub-config.ts';
import { parseBootConfig } from '../../src/store/boot-config.ts';

const BASE = 'http://10.0.0.1:8080';
const MACHINE = { mac: '52:54:00:12:34:56', uuid: '1cff2cd8-f00a-42c8-9426-f55e6a1847f6' };

function render(config: object, transport: 'tftp' | 'http' = 'tftp', base = BASE) {
  return renderGrubConfig(parseBootConfig(JSON.stringify(config)), { baseUrl: base, transport, machine: MACHINE, key: 'mac/52:54:00:12:34:56' });
}

/** The lines GRUB executes (comments and the echo of the message left out). */
function commands(text: string): string[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('echo '));
}

const words: [string, string][] = [
  ['console=ttyS0,115200n8', 'console=ttyS0,115200n8'],
  ['quiet', 'quiet'],
  ['', "''"],
  ['a b', "'a b'"],
  ['foo="a b"', `'foo="a b"'`],
  ["it's", "'it'\\''s'"],
  ['${mac}', "'${mac}'"],
  ['a;reboot', "'a;reboot'"],
  ['x|y&z', "'x|y&z'"],
  ['url=http://h/x?a=1', "'url=http://h/x?a=1'"],
  ['back\\slash', "'back\\slash'"],
  ['{brace}', "'{brace}'"],
  ['*', "'*'"],
];
for (const [input, want] of words) {
  test(`grubWord(${JSON.stringify(input)}) keeps it one literal word`, (t) => {
    t.is(grubWord(input), want);
  });
}

test('cmdlineWords splits as the kernel does: spaces separate, double quotes group', (t) => {
  t.deepEqual(cmdlineWords('a  b=1 c="x y" d'), ['a', 'b=1', 'c="x y"', 'd']);
  t.deepEqual(cmdlineWords('  '), []);
  t.deepEqual(cmdlineWords('dangling="x y'), ['dangling="x y']);
});

test('renders the kernel, every initrd on one line, the cmdline, then boot; /images paths stay TFTP paths on GRUB’s server', (t) => {
  const r = render({ kernel: '/images/debian/linux', initrd: ['/images/debian/initrd.gz', 'images/extra.cpio'], cmdline: 'console=ttyS0 token=abc', loader: 'grub' });
  t.deepEqual(commands(r.text), ['set timeout=0', 'linux /images/debian/linux console=ttyS0 token=abc', 'initrd /images/debian/initrd.gz /images/extra.cpio', 'boot']);
  t.is(r.kernel, '/images/debian/linux');
  t.deepEqual(r.initrds, ['/images/debian/initrd.gz', '/images/extra.cpio']);
  t.deepEqual(r.problems, []);
  t.regex(r.text, /^# bootcfg-appliance: mac\/52:54:00:12:34:56 for mac=52:54:00:12:34:56 uuid=1cff2cd8/);
});

test('no initrd: no initrd line; no cmdline: the kernel alone', (t) => {
  t.deepEqual(commands(render({ kernel: '/images/k' }).text), ['set timeout=0', 'linux /images/k', 'boot']);
});

test('the object cmdline renders sorted, flags bare, {{base_url}} and the iPXE settings the request told us filled in', (t) => {
  const r = render({ kernel: '/images/k', cmdline: { url: '{{base_url}}/cloud?mac=${mac:hexhyp}', quiet: true, id: '${uuid}', raw: '${mac:hexraw}', other: '${hostname}' } });
  t.is(commands(r.text)[1], `linux /images/k id=${MACHINE.uuid} 'other=\${hostname}' quiet raw=525400123456 'url=http://10.0.0.1:8080/cloud?mac=52-54-00-12-34-56'`);
});

test('a quoted value stays one kernel argument, with its quotes, and nothing in it is GRUB syntax', (t) => {
  const r = render({ kernel: '/images/k', cmdline: `a="x y" b=$(reboot) c='q'` });
  t.is(commands(r.text)[1], `linux /images/k 'a="x y"' 'b=$(reboot)' 'c='\\''q'\\'''`);
});

test('the message goes to the console as one quoted echo', (t) => {
  const r = render({ kernel: '/images/k', message: "Debian's installer; $x" });
  t.true(r.text.includes(`echo 'bootcfg-appliance: Debian'\\''s installer; $x'\n`));
});

test('over TFTP, a kernel elsewhere needs GRUB’s http module: rendered as (http,host:port), with the problem said', (t) => {
  const r = render({ kernel: 'http://mirror.example:8000/linux', initrd: [`${BASE}/images/initrd.gz`] });
  t.is(r.kernel, '(http,mirror.example:8000)/linux');
  t.deepEqual(r.initrds, ['/images/initrd.gz'], 'an absolute URL on our own /images is still a TFTP path');
  t.is(r.problems.length, 1);
  t.regex(r.problems[0]!, /not under http:\/\/10\.0\.0\.1:8080\/images\/.*Debian's signed GRUB has none/);
  t.regex(r.text, /echo 'bootcfg-appliance: warning: /);
});

test('https is out of GRUB’s reach: said, whatever the transport', (t) => {
  const r = render({ kernel: 'https://secure.example/linux' }, 'http');
  t.regex(r.problems.join(), /GRUB fetches only http:\/\/ and TFTP, not https/);
});

test('over HTTP (/grub), our own images are named as HTTP URLs; a --base-url with a path prefix is kept', (t) => {
  const r = render({ kernel: '/images/k', initrd: ['/images/i'] }, 'http', 'http://boot.example:8080/bootcfg');
  t.is(r.kernel, '(http,boot.example:8080)/bootcfg/images/k');
  t.deepEqual(r.initrds, ['(http,boot.example:8080)/bootcfg/images/i']);
  t.deepEqual(r.problems, []);
});

test('percent-encoded paths reach TFTP decoded (TFTP names are literal)', (t) => {
  t.is(render({ kernel: '/images/my%20kernel' }).kernel, '/images/my kernel');
  t.is(commands(render({ kernel: '/images/my%20kernel' }).text)[1], "linux '/images/my kernel'");
});

test('the dispatcher hands over by MAC and SMBIOS UUID, quoted against wildcard expansion', (t) => {
  t.regex(GRUB_DISPATCHER, /^smbios --type 1 --get-uuid 8 --set bootcfg_uuid$/m);
  t.regex(GRUB_DISPATCHER, /^configfile "\$\{prefix\}\/boot\.cfg\?mac=\$\{net_default_mac\}&uuid=\$\{bootcfg_uuid\}"$/m);
});

test('a miss says why on the console and returns to the firmware', (t) => {
  const text = renderGrubMiss('no boot config for mac=52:54:00:12:34:56: looked up boot/default (no file)');
  t.deepEqual(commands(text), ['sleep 10', 'exit 1']);
  t.regex(text, /^echo 'bootcfg-appliance: no boot config for mac=52:54:00:12:34:56: looked up boot\/default \(no file\)'$/m);
});

test('validate rejects an unknown loader, naming the field and the choices', (t) => {
  const err = t.throws(() => parseBootConfig(JSON.stringify({ kernel: '/images/k', loader: 'pxelinux' })));
  t.regex(err.message, /^loader: must be one of "ipxe", "grub" \(got "pxelinux"\)$/);
  t.is(parseBootConfig(JSON.stringify({ kernel: '/images/k', loader: 'grub' })).loader, 'grub');
  t.is(parseBootConfig(JSON.stringify({ kernel: '/images/k' })).loader, undefined);
});
