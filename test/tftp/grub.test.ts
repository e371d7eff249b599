/** GRUB's files over TFTP, fetched by atftp: the dispatcher, the per-machine hand-over, /images, the probes. */
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { BootTimeline } from '../../src/events/timeline.ts';
import { withGrubPrefix, GRUB_PREFIX_PLACEHOLDER } from '../../src/firmware/grub-prefix.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Mac } from '../../src/net/mac.ts';
import { FileStore } from '../../src/store/file-store.ts';
import { grubFiles } from '../../src/tftp/grub-files.ts';
import { clients, makeRoot, readText, startServer, tempDir } from './helpers.ts';

const MAC = '52:54:00:12:34:56' as Mac;
const UUID = '1cff2cd8-f00a-42c8-9426-f55e6a1847f6';

async function setup(t: { teardown(fn: () => Promise<void> | void): void }) {
  const root = await makeRoot();
  const data = await mkdtemp(path.join(tmpdir(), 'bca-grubdata-'));
  const images = await mkdtemp(path.join(tmpdir(), 'bca-grubimages-'));
  const out = await tempDir();
  await mkdir(path.join(data, 'boot', 'mac'), { recursive: true });
  await mkdir(path.join(data, 'boot', 'uuid'), { recursive: true });
  await writeFile(path.join(data, 'boot', 'mac', `${MAC}.json`), JSON.stringify({ kernel: '/images/k', initrd: ['/images/i.gz'], cmdline: 'console=ttyS0 token=by-mac', loader: 'grub' }));
  await writeFile(path.join(data, 'boot', 'uuid', `${UUID}.json`), JSON.stringify({ kernel: '/images/k', cmdline: 'token=by-uuid' }));
  await mkdir(path.join(images, 'debian'));
  await writeFile(path.join(images, 'debian', 'linux'), 'KERNEL BYTES');
  await writeFile(path.join(root.dir, 'secret.txt'), 'outside images');
  await symlink(path.join(root.dir, 'secret.txt'), path.join(images, 'escape'));
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { level: 'info', format: 'json' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const store = new FileStore(data, { log, metrics: new Metrics() });
  await store.open();
  const timeline = new BootTimeline();
  const running = await startServer(root.dir, { images, generated: grubFiles({ store, timeline, log, baseUrl: 'http://10.0.0.1:8080' }) });
  t.teardown(async () => {
    await running.stop();
    await store.close();
    await Promise.all([root.cleanup(), out.cleanup(), rm(data, { recursive: true, force: true }), rm(images, { recursive: true, force: true })]);
  });
  const get = async (name: string) => {
    const local = path.join(out.dir, `f${Math.random()}`);
    // atftp: tftp-hpa would read the MAC's colons in a name as host:file.
    const r = await clients.atftp(running.port, name, local);
    return { ...r, text: await readText(local) };
  };
  return { get, timeline, lines, running };
}

test('grub/grub.cfg and the per-platform path are the dispatcher', async (t) => {
  const { get } = await setup(t);
  for (const name of ['grub/grub.cfg', '/grub/x86_64-efi/grub.cfg', 'grub/arm64-efi/grub.cfg']) {
    const r = await get(name);
    t.is(r.code, 0, r.stderr);
    t.regex(r.text ?? '', /configfile "\$\{prefix\}\/boot\.cfg\?mac=\$\{net_default_mac\}&uuid=\$\{bootcfg_uuid\}"/, name);
  }
});

test('the hand-over renders the machine’s config (uuid → mac → default) and records it on the timeline', async (t) => {
  const { get, timeline } = await setup(t);
  const byMac = await get(`grub/boot.cfg?mac=${MAC}&uuid=`);
  t.is(byMac.code, 0, byMac.stderr);
  t.regex(byMac.text ?? '', /^linux \/images\/k console=ttyS0 token=by-mac$/m);
  t.regex(byMac.text ?? '', /^initrd \/images\/i\.gz$/m);
  // qemu without -smbios (and boards without one) report the all-zero UUID: no UUID, so the MAC decides.
  const zero = await get(`grub/boot.cfg?mac=${MAC}&uuid=00000000-0000-0000-0000-000000000000`);
  t.regex(zero.text ?? '', /token=by-mac/);
  const byUuid = await get(`grub/boot.cfg?mac=${MAC}&uuid=${UUID.toUpperCase()}`);
  t.regex(byUuid.text ?? '', /^linux \/images\/k token=by-uuid$/m);
  const events = timeline.get(MAC)?.events.filter((e) => e.step === 'grub.config') ?? [];
  t.is(events.length, 3);
  t.like(events[0]?.detail, { via: 'tftp', found: true, key: `mac/${MAC}`, kernel: '/images/k', initrds: ['/images/i.gz'] });
  t.like(events[2]?.detail, { found: true, key: `uuid/${UUID}` });
});

test('a machine without a config gets the reason on its console, a warning in the log, and a failed step', async (t) => {
  const { get, timeline, lines } = await setup(t);
  const other = '52:54:00:99:99:99' as Mac;
  const r = await get(`grub/boot.cfg?mac=${other}&uuid=`);
  t.is(r.code, 0, r.stderr);
  t.regex(r.text ?? '', /^echo 'bootcfg-appliance: no boot config for mac=52:54:00:99:99:99: looked up boot\/mac\/52:54:00:99:99:99 \(no file\), boot\/default \(no file\)/m);
  t.regex(r.text ?? '', /^exit 1$/m);
  t.like(timeline.get(other)?.events.at(-1)?.detail, { via: 'tftp', found: false });
  t.true(lines.some((l) => l.level === 40 && /grub config: no boot config for mac=52:54:00:99:99:99/.test(String(l.msg))));
});

test('GRUB’s optional probes miss at once; images/ comes from --images-path and never leaves it', async (t) => {
  const { get } = await setup(t);
  for (const name of ['grub/x86_64-efi/command.lst', `grub/grub.cfg-01-52-54-00-12-34-56`, 'grub/grub.cfg-0A000064']) {
    const r = await get(name);
    t.regex(r.stdout + r.stderr, /File not found/i, name);
    t.is(r.text ?? '', '', name);
  }
  const k = await get('images/debian/linux');
  t.is(k.code, 0, k.stderr);
  t.is(k.text, 'KERNEL BYTES');
  const esc = await get('images/escape');
  t.regex(esc.stdout + esc.stderr, /Access violation/i);
  t.is(esc.text ?? '', '');
  const up = await get('images/../secret.txt');
  t.regex(up.stdout + up.stderr, /Access violation/i);
});

test('the arm64 image is served with this appliance’s address in its prefix', async (t) => {
  const image = Buffer.concat([Buffer.from('MZ head '), Buffer.from(GRUB_PREFIX_PLACEHOLDER), Buffer.alloc(4), Buffer.from(' tail')]);
  const patched = withGrubPrefix(image, '10.7.0.1');
  t.is(patched.length, image.length);
  t.true(patched.includes(Buffer.from('(tftp,10.7.0.1)/grub\0\0\0\0\0\0\0')));
  t.false(patched.includes(Buffer.from(GRUB_PREFIX_PLACEHOLDER)));
  t.throws(() => withGrubPrefix(Buffer.from('no placeholder'), '10.7.0.1'), { message: /no prefix placeholder/ });
  t.throws(() => withGrubPrefix(Buffer.concat([image, image]), '10.7.0.1'), { message: /more than once/ });
  // The real image as fetch.sh built it, when it is there: exactly one placeholder.
  const real = await readFile(new URL('../../firmware/grubaa64.efi', import.meta.url)).catch(() => undefined);
  if (real) t.notThrows(() => withGrubPrefix(real, '255.255.255.255'));
});
