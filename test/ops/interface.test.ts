import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isRoot, Topology } from '../helpers/netns.ts';
import { cliArgs, PROJECT_ROOT } from '../helpers/appliance.ts';

const maybe = isRoot ? test.serial : test.skip;
const run = promisify(execFile);

maybe('--iface that exists but has no carrier is reported as down, not as missing (needs root)', async (t) => {
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const a = await topo.namespace('ifa');
  const b = await topo.namespace('ifb');
  // eth0 is up with an address, but its peer is down: no carrier, as with the cable out.
  await topo.veth(a, 'eth0', b, 'eth0', '10.98.0.1/24');
  await b.ip('link', 'set', 'eth0', 'down');
  // The kernel settles a new veth's operational state up to a second later (linkwatch), and
  // until then Node still lists eth0 as running: wait until it does not, as the appliance will see it.
  const listed = async () => (await a.exec(process.execPath, ['-e', "process.stdout.write(String('eth0' in require('os').networkInterfaces()))"])).trim() === 'true';
  for (let i = 0; i < 50 && (await listed()); i++) await new Promise((r) => setTimeout(r, 100));
  const start = (iface: string) =>
    run('ip', ['netns', 'exec', a.name, process.execPath, ...cliArgs(['--iface', iface, '--data-path', `${PROJECT_ROOT}data`])], { cwd: PROJECT_ROOT, encoding: 'utf8' }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  const down = await start('eth0');
  t.is(down.code, 2);
  t.regex(down.stderr, /interface eth0 exists but is down or has no carrier/);
  const missing = await start('eth7');
  t.is(missing.code, 2);
  t.regex(missing.stderr, /interface eth7 does not exist/);
});
