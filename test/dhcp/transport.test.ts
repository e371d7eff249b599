import test from 'ava';
import { bootServerDestination, replyDestination } from '../../src/dhcp/transport.ts';

const Z = '0.0.0.0';

test('replyDestination: relay first, then ciaddr unicast, else broadcast; a NAK is never unicast', (t) => {
  const rows: [string, { giaddr: string; ciaddr: string }, { nak?: boolean }, { address: string; port: number; via: string }][] = [
    ['fresh client', { giaddr: Z, ciaddr: Z }, {}, { address: '255.255.255.255', port: 68, via: 'broadcast' }],
    ['relayed', { giaddr: '10.5.0.1', ciaddr: Z }, {}, { address: '10.5.0.1', port: 67, via: 'relay' }],
    ['relayed renewal', { giaddr: '10.5.0.1', ciaddr: '10.5.0.9' }, {}, { address: '10.5.0.1', port: 67, via: 'relay' }],
    ['renewal / INFORM', { giaddr: Z, ciaddr: '10.0.0.9' }, {}, { address: '10.0.0.9', port: 68, via: 'unicast' }],
    ['NAK to a renewing client', { giaddr: Z, ciaddr: '10.0.0.9' }, { nak: true }, { address: '255.255.255.255', port: 68, via: 'broadcast' }],
    ['NAK relayed', { giaddr: '10.5.0.1', ciaddr: Z }, { nak: true }, { address: '10.5.0.1', port: 67, via: 'relay' }],
  ];
  for (const [what, req, opts, want] of rows) t.deepEqual(replyDestination(req, opts), want, what);
});

test('bootServerDestination: back to the sender port, at ciaddr or the source address', (t) => {
  t.deepEqual(bootServerDestination({ ciaddr: '10.0.0.7' }, { address: '10.0.0.7', port: 4011 }), { address: '10.0.0.7', port: 4011, via: 'unicast' });
  t.deepEqual(bootServerDestination({ ciaddr: Z }, { address: '10.0.0.8', port: 68 }), { address: '10.0.0.8', port: 68, via: 'unicast' });
  t.deepEqual(bootServerDestination({ ciaddr: '10.0.0.9' }, { address: '10.0.0.8', port: 68 }), { address: '10.0.0.9', port: 68, via: 'unicast' });
  t.deepEqual(bootServerDestination({ ciaddr: Z }, { address: Z, port: 68 }), { address: '255.255.255.255', port: 68, via: 'broadcast' });
});
