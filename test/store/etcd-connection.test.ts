import test from 'ava';
import { parseStoreUrl, StoreUrlError, connectEtcd, describeEtcdError } from '../../src/store/etcd-connection.ts';
import { configKey, leaseKey, relOfConfigKey, subnetSegment } from '../../src/store/etcd-keys.ts';
import { ConfigError, resolveConfig, type RawOptions } from '../../src/config.ts';

test('parseStoreUrl: one or more HOST:PORT, the prefix defaulting to /bootcfg', (t) => {
  t.deepEqual(parseStoreUrl('etcd://10.0.0.1:2379'), { endpoints: ['10.0.0.1:2379'], prefix: '/bootcfg' });
  t.deepEqual(parseStoreUrl('etcd://a:2379,b.example.com:2379,[fd00::1]:2379/site-a'), { endpoints: ['a:2379', 'b.example.com:2379', '[fd00::1]:2379'], prefix: '/site-a' });
  t.deepEqual(parseStoreUrl('etcd://a:2379/'), { endpoints: ['a:2379'], prefix: '/bootcfg' });
  t.deepEqual(parseStoreUrl('etcd://a:2379/x/y.z_1/'), { endpoints: ['a:2379'], prefix: '/x/y.z_1' });
});

test('parseStoreUrl: bad input is refused with the reason and the URL quoted', (t) => {
  const cases: [string, RegExp][] = [
    ['http://a:2379', /must start with etcd:\/\//],
    ['etcd://', /names no HOST:PORT/],
    ['etcd:///bootcfg', /names no HOST:PORT/],
    ['etcd://a', /"a" is not HOST:PORT/],
    ['etcd://a:2379,,b:2379', /"" is not HOST:PORT/],
    ['etcd://a:99999', /port must be 1\.\.65535/],
    ['etcd://a:2379/has space', /the prefix is/],
    ['etcd://a:2379/a//b', /the prefix is/],
  ];
  for (const [url, reason] of cases) {
    const err = t.throws(() => parseStoreUrl(url), { instanceOf: StoreUrlError }, url);
    t.regex(err!.message, reason, url);
    t.true(err!.message.includes(`"${url}"`), url);
  }
});

test('connectEtcd: a client certificate needs its key and the CA; an unreadable CA is named', (t) => {
  t.throws(() => connectEtcd({ endpoints: ['a:2379'], prefix: '/b', cert: '/x.pem' }), { message: /--store-cert and --store-key go together/ });
  t.throws(() => connectEtcd({ endpoints: ['a:2379'], prefix: '/b', cert: '/x.pem', key: '/y.pem' }), { message: /needs --store-ca/ });
  t.throws(() => connectEtcd({ endpoints: ['a:2379'], prefix: '/b', ca: '/nonexistent/ca.pem' }), { message: /--store-ca \/nonexistent\/ca\.pem: ENOENT/ });
  t.notThrows(() => connectEtcd({ endpoints: ['127.0.0.1:1'], prefix: '/b' }).close(), 'plain endpoints need no TLS files');
});

test('describeEtcdError: a refused or untrusted TLS handshake is named in the flags’ words, on one line, the raw message kept', (t) => {
  // The messages grpc-js gave against etcd 3.4 with --client-cert-auth (test/e2e/etcd-tls.test.ts).
  const refused = new Error(
    '14 UNAVAILABLE: No connection established. Last error: 80BC:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:rec_layer_s3.c:1601:SSL alert number 42\n (2026-12-01T16:04:26.481Z). Resolution note: ',
  );
  const noCert = describeEtcdError(refused, { ca: '/pki/ca.pem' });
  t.regex(noCert, /^TLS: the member demands a client certificate .*--store-cert and --store-key \(14 UNAVAILABLE: .*alert bad certificate.* \(2026/);
  t.false(noCert.includes('\n'));
  t.regex(describeEtcdError(refused, { ca: '/pki/ca.pem', cert: '/pki/me.pem' }), /^TLS: the member refused the client certificate \/pki\/me\.pem/);
  const untrusted = new Error('14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ');
  t.regex(describeEtcdError(untrusted, { ca: '/pki/other.pem' }), /^TLS: the member's certificate does not check against --store-ca \/pki\/other\.pem \(14 UNAVAILABLE/);
  const down = new Error('14 UNAVAILABLE: No connection established. Last error: Failed to connect (2026-12-01T16:04:53.542Z). Resolution note: ');
  t.is(describeEtcdError(down, {}), down.message.trim());
});

test('key layout: config keys map back to data-directory paths, and nothing else does', (t) => {
  t.is(configKey('/bootcfg', 'boot/mac/52:54:00:c7:b6:64.json'), '/bootcfg/config/boot/mac/52:54:00:c7:b6:64.json');
  t.is(relOfConfigKey('/bootcfg', '/bootcfg/config/profiles/worker.json'), 'profiles/worker.json');
  for (const stray of ['/bootcfg/config/boot', '/bootcfg/config/dhcp/hosts/a.json', '/bootcfg/config/boot/../x', '/bootcfg/config/boot//x', '/other/config/boot/default', '/bootcfg/leases/x'])
    t.is(relOfConfigKey('/bootcfg', stray), undefined, stray);
  t.is(leaseKey('/bootcfg', subnetSegment('10.0.0.0', 24), '10.0.0.5'), '/bootcfg/leases/10.0.0.0-24/10.0.0.5');
});

const env = { lookupInterface: () => ({ address: '10.0.0.1', netmask: '255.255.255.0' }), isTty: false };

test('config: without --store the file store; with it etcd, its TLS paths absolute and its mirror under --data-path', (t) => {
  t.deepEqual(resolveConfig({ 'data-path': '/srv/data' }, env).store, { kind: 'file' });
  const store = resolveConfig({ 'data-path': '/srv/data', store: 'etcd://e1:2379,e2:2379/site', 'store-ca': '/etc/ca.pem' } as RawOptions, env).store;
  t.deepEqual(store, { kind: 'etcd', endpoints: ['e1:2379', 'e2:2379'], prefix: '/site', ca: '/etc/ca.pem', cert: undefined, key: undefined, mirrorPath: '/srv/data/state/etcd-config' });
});

test('config: a bad --store or TLS flags without it are usage errors naming the flag', (t) => {
  t.throws(() => resolveConfig({ store: 'etcd://nohost' } as RawOptions, env), { instanceOf: ConfigError, message: /^--store: "etcd:\/\/nohost": "nohost" is not HOST:PORT/ });
  t.throws(() => resolveConfig({ 'store-ca': '/ca.pem' } as RawOptions, env), { instanceOf: ConfigError, message: /--store-ca: only meaningful with --store/ });
  t.throws(() => resolveConfig({ store: 'etcd://a:1', 'store-key': '/k.pem' } as RawOptions, env), { instanceOf: ConfigError, message: /--store-cert and --store-key go together/ });
});
