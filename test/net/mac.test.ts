import test from 'ava';
import { macFromBytes, parseMac } from '../../src/net/mac.ts';
import { parseUuid, uuidFromClientGuid } from '../../src/net/uuid.ts';

const forms: [string, string | undefined][] = [
  ['52:54:00:12:34:56', '52:54:00:12:34:56'],
  ['52-54-00-12-34-56', '52:54:00:12:34:56'],
  ['5254.0012.3456', '52:54:00:12:34:56'],
  ['525400123456', '52:54:00:12:34:56'],
  ['52:54:00:AB:CD:EF', '52:54:00:ab:cd:ef'],
  ['52-54-00-AB-cd-EF', '52:54:00:ab:cd:ef'],
  ['  525400ABCDEF ', '52:54:00:ab:cd:ef'],
  ['52:54-00:12:34:56', undefined],
  // The character-code path for the lower-case separated forms, and what it must hand on or refuse.
  ['52-54-00-12-34-5f', '52:54:00:12:34:5f'],
  [' 52:54:00:12:34:56', '52:54:00:12:34:56'],
  ['52:54:00:12:34:56 ', '52:54:00:12:34:56'],
  ['52:54:00:12:34:5F', '52:54:00:12:34:5f'],
  ['52:54:00:12:34:5G', undefined],
  ['52:54:00:12:34-56', undefined],
  ['52:54:00:12:3456:', undefined],
  ['52.54.00.12.34.56', undefined],
  ['52:54:00:12:34:5/', undefined],
  ['52:54:00:12:34:5`', undefined],
  ['52:54:00:12:34', undefined],
  ['52:54:00:12:34:5g', undefined],
  ['', undefined],
  ['../etc/passwd', undefined],
];

for (const [input, expected] of forms) {
  test(`parseMac(${JSON.stringify(input)})`, (t) => {
    t.is(parseMac(input) as string | undefined, expected);
  });
}

test('macFromBytes renders lowercase colon form', (t) => {
  t.is(macFromBytes(Buffer.from([0x52, 0x54, 0, 0xab, 0xcd, 0xef])) as string, '52:54:00:ab:cd:ef');
  t.throws(() => macFromBytes(Buffer.alloc(5)));
});

test('parseUuid accepts any case and the undashed form', (t) => {
  t.is(parseUuid('4C4C4544-0042-4E10-8052-B4C04F385A31') as string | undefined, '4c4c4544-0042-4e10-8052-b4c04f385a31');
  t.is(parseUuid('4c4c454400424e108052b4c04f385a31') as string | undefined, '4c4c4544-0042-4e10-8052-b4c04f385a31');
  t.is(parseUuid('not-a-uuid') as string | undefined, undefined);
});

test('uuidFromClientGuid undoes the byte swap of the first three fields (option 97)', (t) => {
  // SMBIOS UUID 11223344-5566-7788-99aa-bbccddeeff00 as OVMF and iPXE put it on the wire.
  const wire = Buffer.from('00' + '44332211' + '6655' + '8877' + '99aabbccddeeff00', 'hex');
  t.is(uuidFromClientGuid(wire) as string | undefined, '11223344-5566-7788-99aa-bbccddeeff00');
  t.is(uuidFromClientGuid(wire.subarray(1)) as string | undefined, undefined);
  t.is(uuidFromClientGuid(Buffer.concat([Buffer.from([1]), wire.subarray(1)])) as string | undefined, undefined);
});
