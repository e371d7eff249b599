import test from 'ava';
import { acceptedAsIs, MachineQuerySchema, type RawQuery } from '../../src/http/machine-query.ts';

const MAC = '52:54:00:12:34:56';
const UUID = '1cff2cd8-f00a-42c8-9426-f55e6a1847f6';

/** Queries iPXE, GRUB, curl and careless scripts send; some zod accepts, some it refuses. */
const QUERIES: RawQuery[] = [
  {},
  { mac: MAC },
  { mac: '52-54-00-12-34-56', uuid: UUID.toUpperCase() },
  { mac: ` ${MAC} `, uuid: '', hostname: ' node1 ', domain: 'example.com', serial: 'ABC123' },
  { mac: MAC, uuid: UUID, hostname: '', extra: 'kept out', os: 'installed' },
  { mac: MAC, arch: ['a', 'b'] },
  { mac: 'not-a-mac' },
  { uuid: 'not-a-uuid', mac: MAC },
  { mac: [MAC, MAC] },
  { hostname: 'h'.repeat(255) },
  { hostname: 'h'.repeat(256) },
  { serial: ['x'] },
  { mac: '', uuid: '   ' },
  { mac: undefined, uuid: undefined },
];

test('acceptedAsIs gives what MachineQuerySchema gives, or leaves the query to zod', (t) => {
  let fast = 0;
  for (const raw of QUERIES) {
    const ours = acceptedAsIs(raw);
    const zods = MachineQuerySchema.safeParse(raw);
    if (ours === undefined) continue;
    fast += 1;
    t.true(zods.success, JSON.stringify(raw));
    if (zods.success) t.deepEqual(ours, zods.data, JSON.stringify(raw));
  }
  // Every query zod accepts is taken without it, too.
  t.is(fast, QUERIES.filter((q) => MachineQuerySchema.safeParse(q).success).length);
});
