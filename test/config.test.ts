import test from 'ava';
import { hostname } from 'node:os';
import { ConfigError, resolveConfig, type RawOptions } from '../src/config.ts';
import { parseHostPort } from '../src/net/host-port.ts';
import { envName, readServeOptions } from '../src/cli.ts';

const env = {
  lookupInterface: (name: string) => {
    if (name !== 'br0') throw new Error(`no interface ${name}`);
    return { address: '10.9.0.1', netmask: '255.255.255.0' };
  },
  isTty: false,
};

const resolve = (raw: RawOptions) => resolveConfig(raw, env);

test('without --iface it is the plain HTTP service', (t) => {
  const c = resolve({});
  t.is(c.dhcp.mode, 'off');
  t.is(c.tftp, undefined);
  t.deepEqual(c.http, { host: '0.0.0.0', port: 8080 });
  t.is(c.baseUrl, 'http://127.0.0.1:8080');
  t.is(c.log.format, 'json');
});

test('with --iface: proxy DHCP, TFTP on the interface address, URLs on its IPv4', (t) => {
  const c = resolve({ iface: 'br0', address: ':9000' });
  t.is(c.dhcp.mode, 'proxy');
  t.deepEqual(c.tftp, { host: '10.9.0.1', port: 69 });
  t.is(c.baseUrl, 'http://10.9.0.1:9000');
  t.is(c.advertisedAddress, '10.9.0.1');
});

test('--base-url overrides and loses its trailing slash', (t) => {
  t.is(resolve({ 'base-url': 'http://boot.example:80/' }).baseUrl, 'http://boot.example:80');
});

test('--tftp-address off and HOST:PORT', (t) => {
  t.is(resolve({ iface: 'br0', 'tftp-address': 'off' }).tftp, undefined);
  t.deepEqual(resolve({ iface: 'br0', 'tftp-address': ':1069' }).tftp, { host: '10.9.0.1', port: 1069 });
  t.deepEqual(resolve({ 'tftp-address': '127.0.0.1:6969' }).tftp, { host: '127.0.0.1', port: 6969 });
});

test('full mode needs a range inside the interface subnet', (t) => {
  const c = resolve({ iface: 'br0', dhcp: 'full', 'dhcp-range': '10.9.0.100,10.9.0.200', 'dhcp-dns': '10.9.0.1, 10.9.0.2' });
  t.deepEqual(c.dhcp.range, { start: '10.9.0.100', end: '10.9.0.200' });
  t.deepEqual(c.dhcp.dns, ['10.9.0.1', '10.9.0.2']);
  t.regex(c.dhcp.leaseFile, /data\/state\/leases\.json$/);
});

const bad: [string, RawOptions, RegExp][] = [
  ['unknown dhcp mode', { dhcp: 'bogus' as never }, /--dhcp:/],
  ['full without range', { iface: 'br0', dhcp: 'full' }, /needs --dhcp-range/],
  ['range outside the subnet', { iface: 'br0', dhcp: 'full', 'dhcp-range': '10.8.0.1,10.8.0.9' }, /not in br0's subnet/],
  ['range reversed', { iface: 'br0', dhcp: 'full', 'dhcp-range': '10.9.0.9,10.9.0.1' }, /is after END/],
  ['range not addresses', { iface: 'br0', dhcp: 'full', 'dhcp-range': 'a,b' }, /must be IPv4/],
  ['range in proxy mode', { iface: 'br0', 'dhcp-range': '10.9.0.1,10.9.0.9' }, /only meaningful with --dhcp full/],
  ['dhcp without iface', { dhcp: 'proxy' }, /needs --iface/],
  ['bad address', { address: 'nowhere' }, /--address: expected HOST:PORT/],
  ['bad port', { address: '1.2.3.4:70000' }, /--address/],
  ['bad base url', { 'base-url': 'ftp://x' }, /--base-url/],
  ['bad log level', { 'log-level': 'loud' as never }, /--log-level/],
  ['short lease', { 'lease-time': '5' }, /--lease-time/],
  ['bad dns', { 'dhcp-dns': '1.2.3' }, /--dhcp-dns/],
];
for (const [name, raw, message] of bad) {
  test(`rejects ${name}`, (t) => {
    const err = t.throws(() => resolve(raw), { instanceOf: ConfigError });
    t.regex(err!.message, message);
  });
}

test('parseHostPort forms', (t) => {
  t.deepEqual(parseHostPort('1.2.3.4:80'), { host: '1.2.3.4', port: 80 });
  t.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  t.deepEqual(parseHostPort('8080'), { host: '0.0.0.0', port: 8080 });
});

test('flags win over BOOTCFG_* variables; every flag has one', (t) => {
  t.is(envName('data-path'), 'BOOTCFG_DATA_PATH');
  const { raw } = readServeOptions(['--address', '127.0.0.1:1'], { BOOTCFG_ADDRESS: '0.0.0.0:2', BOOTCFG_IFACE: 'br0', BOOTCFG_DHCP: '' });
  t.deepEqual(raw, { address: '127.0.0.1:1', iface: 'br0' });
});

test('unknown flags are usage errors', (t) => {
  t.throws(() => readServeOptions(['--ifcae', 'x'], {}), { message: /ifcae/ });
});

test('--name: the host name by default; a name that is no single key segment is refused; --fleet-ttl bounded', (t) => {
  t.is(resolve({}).name, hostname());
  t.is(resolve({ name: 'rack1-a.site_2' }).name, 'rack1-a.site_2');
  t.throws(() => resolve({ name: 'a/b' }), { instanceOf: ConfigError, message: /^--name: expected 1-63 letters/ });
  t.is(resolve({}).fleetTtl, 30);
  t.throws(() => resolve({ 'fleet-ttl': '1' }), { instanceOf: ConfigError, message: /^--fleet-ttl/ });
});
