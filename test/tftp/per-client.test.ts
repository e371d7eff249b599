/**
 * The cap on transfers in flight per client IP address, so RRQs spoofed from one address
 * cannot take every slot: scripted clients on 127.0.0.1 (each its own port, one address),
 * the default of 8, the log of a flood held to one line, and the flag through the real CLI.
 */
import test from 'ava';
import { readServeOptions, USAGE } from '../../src/cli.ts';
import { ConfigError, resolveConfig, type RawOptions } from '../../src/config.ts';
import { encodeAck, encodeError, encodeRequest, ERR } from '../../src/tftp/packet.ts';
import { TOO_MANY_FROM_CLIENT } from '../../src/tftp/server.ts';
import { DEFAULT_RETRANSMIT } from '../../src/tftp/session.ts';
import { startAppliance } from '../helpers/appliance.ts';
import { freePort, makeRoot, startServer, type Root } from './helpers.ts';
import { RawClient } from './raw-client.ts';

/** Retransmission slow enough that transfers sit in flight while the test looks. */
const PATIENT = { ...DEFAULT_RETRANSMIT, minRtoMs: 10_000, initialRtoMs: 10_000, maxRtoMs: 10_000 };

let root: Root;

test.before(async () => {
  root = await makeRoot();
});
test.after.always(async () => root?.cleanup());

async function openClients(n: number): Promise<RawClient[]> {
  return Promise.all(Array.from({ length: n }, () => RawClient.open()));
}

const waitMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('over the per-client cap a request gets ERROR 0 at once from the request port, and a slot freed is a slot to use', async (t) => {
  const srv = await startServer(root.dir, { maxTransfersPerClient: 2, retransmit: PATIENT });
  const [a, b, c] = await openClients(3);
  t.teardown(() => {
    for (const x of [a, b, c]) x!.close();
    return srv.stop();
  });
  a!.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  const da = await a!.expect('data');
  b!.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  await b!.expect('data');

  c!.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  const e = await c!.expect('error');
  t.is(e.packet.code, ERR.NOT_DEFINED);
  t.is(e.packet.message, TOO_MANY_FROM_CLIENT);
  t.is(e.port, srv.port);
  t.is(srv.server.transfers, 2);
  t.is(await srv.counter('tftpTransfers', { outcome: 'per-client-limit' }), 1);
  const line = srv.logs.find((l) => l.outcome === 'per-client-limit');
  t.is(line?.level, 40);
  t.regex(String(line?.msg), /too many transfers from that address/);
  t.regex(String(line?.detail), /2 transfers in flight from 127\.0\.0\.1/);

  // A new request from a port already in flight replaces its transfer: not one more.
  b!.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { blksize: '1024' }), srv.port);
  t.is((await b!.expect('oack')).packet.options.blksize, '1024');
  t.is(srv.server.transfers, 2);

  // a gives up; its slot is free again.
  a!.send(encodeError(ERR.NOT_DEFINED, 'enough'), da.port);
  await waitMs(100);
  t.is(srv.server.transfers, 1);
  c!.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  const dc = await c!.expect('data');
  t.is(dc.packet.block, 1);
  c!.send(encodeAck(1), dc.port);
  t.is((await c!.expect('data')).packet.block, 2);
  t.is(await srv.counter('tftpTransfers', { outcome: 'busy' }), 0, 'the global cap is another thing');
});

test.serial('the default cap is 8 transfers per address', async (t) => {
  const srv = await startServer(root.dir, { retransmit: PATIENT });
  const cs = await openClients(9);
  t.teardown(() => {
    for (const x of cs) x.close();
    return srv.stop();
  });
  for (const c of cs.slice(0, 8)) {
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    t.is((await c.expect('data')).packet.block, 1);
  }
  cs[8]!.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  t.is((await cs[8]!.expect('error')).packet.message, TOO_MANY_FROM_CLIENT);
  t.is(srv.server.transfers, 8);
});

test.serial('a flood over the cap is counted in full and logged once per interval', async (t) => {
  const srv = await startServer(root.dir, { maxTransfersPerClient: 1, retransmit: PATIENT });
  const cs = await openClients(41);
  t.teardown(() => {
    for (const x of cs) x.close();
    return srv.stop();
  });
  cs[0]!.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  await cs[0]!.expect('data');
  for (const c of cs.slice(1)) c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
  for (const c of cs.slice(1)) t.is((await c.expect('error')).packet.code, ERR.NOT_DEFINED);
  t.is(await srv.counter('tftpTransfers', { outcome: 'per-client-limit' }), 40);
  t.is(srv.logs.filter((l) => l.outcome === 'per-client-limit').length, 1);
  t.is(srv.server.transfers, 1);
});

const env = { lookupInterface: () => ({ address: '10.9.0.1', netmask: '255.255.255.0' }), isTty: false };
/** Raw options as the CLI hands them over: strings, validated by resolveConfig. */
const resolve = (raw: RawOptions | Record<string, string>) => resolveConfig(raw as RawOptions, env);

test('--tftp-max-per-client N and BOOTCFG_TFTP_MAX_PER_CLIENT, default 8, 1..1000', (t) => {
  t.is(resolve({}).tftpMaxPerClient, 8);
  t.is(resolve(readServeOptions(['--tftp-max-per-client', '3'], {}).raw).tftpMaxPerClient, 3);
  t.is(resolve(readServeOptions([], { BOOTCFG_TFTP_MAX_PER_CLIENT: '50' }).raw).tftpMaxPerClient, 50);
  t.is(resolve(readServeOptions(['--tftp-max-per-client', '2'], { BOOTCFG_TFTP_MAX_PER_CLIENT: '50' }).raw).tftpMaxPerClient, 2, 'the flag wins');
  t.is(resolve({ 'tftp-max-per-client': '1' }).tftpMaxPerClient, 1);
  t.is(resolve({ 'tftp-max-per-client': '1000' }).tftpMaxPerClient, 1000);
  for (const bad of ['0', '1001', '-1', '2.5', 'many']) {
    t.throws(() => resolve({ 'tftp-max-per-client': bad }), { instanceOf: ConfigError, message: /^--tftp-max-per-client: / }, bad);
  }
  t.regex(USAGE, /--tftp-max-per-client N .*\n.*BOOTCFG_TFTP_MAX_PER_CLIENT/);
});

test.serial('the real CLI with --tftp-max-per-client 1 refuses a second transfer from the same address', async (t) => {
  const tftpPort = await freePort('udp');
  const httpPort = await freePort('tcp');
  const app = await startAppliance(['--tftp-address', `127.0.0.1:${tftpPort}`, '--address', `127.0.0.1:${httpPort}`, '--firmware-path', root.dir, '--tftp-max-per-client', '1']);
  const [a, b] = await openClients(2);
  t.teardown(async () => {
    a!.close();
    b!.close();
    await app.stop();
  });
  await app.waitForLog((l) => String(l.msg).startsWith('tftp listening'));
  a!.send(encodeRequest('rrq', 'undionly.kpxe'), tftpPort);
  const d = await a!.expect('data');
  b!.send(encodeRequest('rrq', 'undionly.kpxe'), tftpPort);
  const e = await b!.expect('error');
  t.is(e.packet.message, TOO_MANY_FROM_CLIENT);
  const line = await app.waitForLog((l) => l.outcome === 'per-client-limit');
  t.regex(String(line.client), /^127\.0\.0\.1:\d+$/);
  a!.send(encodeError(ERR.NOT_DEFINED, 'done'), d.port);
});
