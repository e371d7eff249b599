/**
 * Robustness on the wire (needs root): 100,000 mutated and truncated packets, shaped from
 * real clients' requests sent directly and through a relay with option 82 (fixtures.ts
 * seedCorpus), at ports 67 and 4011; then a valid DISCOVER, and a relayed one with its 82
 * echoed, still get their offers and the process is still serving.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { isRoot } from '../helpers/netns.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import { relayAgentInfo } from './fixtures.ts';
import { createLan, LAN, runPxeClient, startOnLan, testMac } from './scripted.ts';

const maybe = isRoot ? test.serial : test.skip;
const FLOOD = fileURLToPath(new URL('./flood.ts', import.meta.url));

maybe('fuzz: 100,000 mutated packets to 67 and 4011, then a valid DISCOVER still gets its offer (needs root)', async (t) => {
  t.timeout(180_000);
  const lan = await createLan({ clients: 2 });
  t.teardown(() => lan.destroy());
  const app = await startOnLan(lan.srv, ['--log-level', 'info']);
  t.teardown(() => app.stop().then(() => undefined));
  await app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('pxe-bootserver: listening'));
  const flooder = lan.clients[1]!;
  await flooder.ip('addr', 'add', '10.77.0.60/24', 'dev', 'eth0');

  const out = await flooder.exec(process.execPath, [
    '--import',
    'tsx',
    FLOOD,
    JSON.stringify({
      count: 100_000,
      seed: 0x5eed,
      iface: 'eth0',
      targets: [
        { address: '255.255.255.255', port: 67 },
        { address: LAN.server, port: 4011 },
      ],
      maxMs: 60_000,
    }),
  ]);
  const summary = JSON.parse(out.trim().split('\n').at(-1)!) as { sent: number; errors: number; ms: number };
  t.log(`flood: ${summary.sent} packets in ${summary.ms} ms, ${summary.errors} send errors`);
  t.is(summary.sent, 100_000);

  const mac = testMac();
  const replies = await runPxeClient(lan.clients[0]!, { kind: 'uefi7', mac, xid: 0x600df00d, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 20_000, maxReplies: 1 });
  t.is(replies.length, 1, 'the valid DISCOVER was answered');
  t.is(replies[0]!.packet.file, 'ipxe.efi');
  // The flooder turns relay agent: its relayed DISCOVER (from 67, giaddr = its address) with 82.
  const relayInfo = relayAgentInfo('ge-0/0/1.10', 'fuzz-relay', `${LAN.prefix}.0`);
  const relayed = await runPxeClient(flooder, {
    kind: 'bios',
    mac: testMac(),
    xid: 0x600df00e,
    type: MessageType.DISCOVER,
    giaddr: '10.77.0.60',
    to: { address: LAN.server, port: 67 },
    fromPort: 67,
    iface: 'eth0',
    waitMs: 20_000,
    maxReplies: 1,
    options: { [Opt.RELAY_AGENT_INFO]: relayInfo.toString('hex') },
  });
  t.is(relayed.length, 1, 'the valid relayed DISCOVER was answered');
  t.deepEqual(relayed[0]!.packet.options.relayAgentInfo(), relayInfo, 'with its 82 echoed');
  t.is(app.child.exitCode, null, 'still running');
  t.false(
    app.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('handler failed')),
    'no handler error',
  );

  const metrics = await lan.srv.exec('curl', ['-sf', `http://${LAN.server}:8080/metrics`]);
  const malformed = Number(/bootcfg_malformed_packets_total\{protocol="dhcp"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  t.log(`malformed counted: ${malformed}`);
  t.true(malformed > 20_000, `malformed packets counted (${malformed})`);
});
