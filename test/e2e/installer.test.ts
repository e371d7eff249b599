/**
 * The README's run command boots the Debian installer out of the box: the example data/ as
 * shipped, its images brought by `images fetch debian`, a BIOS VM (SeaBIOS + iPXE) on the lab
 * bridge, the appliance as its DHCP server. The installer's own lines on the serial console
 * (the example's cmdline puts its console there) say it started with the example's cmdline.
 * The lab has no route out: the installer finds no mirror, which is past what this checks.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cliArgs, PROJECT_ROOT, startAppliance } from '../helpers/appliance.ts';
import { isRoot } from '../helpers/netns.ts';
import { createLab } from './lib/lab.ts';
import { startVm } from './lib/qemu.ts';
import { applianceArgs, randomMac } from './lib/scenario.ts';

const maybe = isRoot ? test.serial : test.skip;
const run = promisify(execFile);

maybe('the example data boots the Debian installer fetched by `images fetch debian` (needs root)', async (t) => {
  t.timeout(600_000);
  const root = mkdtempSync(path.join(tmpdir(), 'bca-installer-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dataPath = path.join(root, 'data');
  cpSync(path.join(PROJECT_ROOT, 'data'), dataPath, { recursive: true });
  const imagesPath = path.join(root, 'images');
  await run(process.execPath, cliArgs(['images', 'fetch', 'debian', '--images-path', imagesPath, '--cache', '/var/cache/bootcfg-appliance-tests/debian-installer']), {
    cwd: PROJECT_ROOT,
    timeout: 300_000,
    maxBuffer: 16 * 1024 * 1024,
  });

  const lab = await createLab();
  t.teardown(() => lab.destroy());
  const app = await startAppliance(applianceArgs('full', dataPath, imagesPath), { ns: lab.srv, readyTimeoutMs: 30_000 });
  t.teardown(() => app.stop());
  const tap = await lab.tap();
  const vm = await startVm({ ns: lab.srv, tap, firmware: 'bios', mac: randomMac(), name: 'installer', memoryMb: 1024 });
  t.teardown(() => vm.kill());
  try {
    const kernel = await vm.waitFor(/Command line: ([^\n]*)\n/, 300_000);
    t.log(`kernel: ${kernel[1]}`);
    // data/boot/default.json, rendered by /ipxe.
    t.regex(kernel[1]!, /auto=true console=ttyS0,115200n8 priority=critical url=http:\/\/10\.77\.0\.1:8080\/cloud\?mac=\S+/);
    // The installer's init and its first step, on the console the example's cmdline named.
    const started = await vm.waitFor(/Debian GNU\/Linux installer|debian-installer|Detecting network hardware|Configure the network|Loading additional components|main-menu/i, 240_000);
    t.log(`installer: ${started[0]} after ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s`);
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\n--- console ---\n${vm.tail(40)}\n--- appliance ---\n${app.lines
        .slice(-20)
        .map((l) => JSON.stringify(l))
        .join('\n')}`,
    );
  }
  const fetched = app.lines.filter((l) => /^\/images\/debian\//.test(String(l.path ?? '')) && l.status === 200).map((l) => String(l.path));
  t.true(fetched.includes('/images/debian/linux') && fetched.includes('/images/debian/initrd.gz'), `fetched: ${fetched.join(', ')}`);
});
