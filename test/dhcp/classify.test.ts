import test from 'ava';
import { archName, type ArchName } from '../../src/boot/client.ts';
import { classifyClient } from '../../src/dhcp/classify.ts';
import { Opt } from '../../src/dhcp/options.ts';
import { request, GUID_97, GUID_UUID, type ClientKind } from './fixtures.ts';
import type { Mac } from '../../src/net/mac.ts';

const MAC = '52:54:00:ab:cd:ef' as Mac;

const table: [ClientKind, { arch: number | undefined; archName: ArchName; ipxe: boolean; httpBoot: boolean; uuid: string | undefined }][] = [
  ['bios', { arch: 0, archName: 'bios', ipxe: false, httpBoot: false, uuid: GUID_UUID }],
  ['uefi7', { arch: 7, archName: 'efi-x64', ipxe: false, httpBoot: false, uuid: GUID_UUID }],
  ['uefi9', { arch: 9, archName: 'efi-x64', ipxe: false, httpBoot: false, uuid: GUID_UUID }],
  ['ia32', { arch: 6, archName: 'efi-ia32', ipxe: false, httpBoot: false, uuid: GUID_UUID }],
  ['arm64', { arch: 11, archName: 'efi-arm64', ipxe: false, httpBoot: false, uuid: GUID_UUID }],
  ['httpboot16', { arch: 16, archName: 'http-x64', ipxe: false, httpBoot: true, uuid: GUID_UUID }],
  ['httpboot19', { arch: 19, archName: 'http-arm64', ipxe: false, httpBoot: true, uuid: GUID_UUID }],
  ['ipxe-bios', { arch: 0, archName: 'bios', ipxe: true, httpBoot: false, uuid: GUID_UUID }],
  ['ipxe-efi', { arch: 7, archName: 'efi-x64', ipxe: true, httpBoot: false, uuid: GUID_UUID }],
  ['ipxe-175-only', { arch: 7, archName: 'efi-x64', ipxe: true, httpBoot: false, uuid: GUID_UUID }],
  ['udhcpc', { arch: undefined, archName: 'none', ipxe: false, httpBoot: false, uuid: undefined }],
  ['dhclient', { arch: undefined, archName: 'none', ipxe: false, httpBoot: false, uuid: undefined }],
];

for (const [kind, want] of table) {
  test(`classify ${kind}`, (t) => {
    const c = classifyClient(request({ kind, mac: MAC, xid: 1 }))!;
    t.is(c.mac, MAC);
    t.is(c.arch, want.arch);
    t.is(c.archName, want.archName);
    t.is(c.ipxe, want.ipxe);
    t.is(c.httpBoot, want.httpBoot);
    t.is(c.uuid as string | undefined, want.uuid);
    if (want.uuid) t.deepEqual(c.guid, GUID_97);
  });
}

test('option 60 PXEClient alone never makes a client iPXE', (t) => {
  const p = request({ kind: 'ipxe-efi', mac: MAC, xid: 1 });
  p.options.delete(Opt.USER_CLASS);
  p.options.delete(Opt.IPXE_ENCAP);
  t.true(p.options.vendorClass()!.startsWith('PXEClient'));
  t.false(classifyClient(p)!.ipxe);
});

test('iPXE by 77 alone, and by 175 alone', (t) => {
  const only77 = request({ kind: 'ipxe-efi', mac: MAC, xid: 1 });
  only77.options.delete(Opt.IPXE_ENCAP);
  t.true(classifyClient(only77)!.ipxe);
  t.is(classifyClient(only77)!.ipxeFeatures, undefined);
  const only175 = request({ kind: 'ipxe-175-only', mac: MAC, xid: 1 });
  t.true(classifyClient(only175)!.ipxe);
  t.deepEqual(classifyClient(only175)!.ipxeFeatures, { http: true, https: false });
});

test('a user class other than iPXE is not iPXE', (t) => {
  const p = request({ kind: 'uefi7', mac: MAC, xid: 1 });
  p.options.setString(Opt.USER_CLASS, 'iPXE-lookalike');
  t.false(classifyClient(p)!.ipxe);
});

test('non-Ethernet hardware is not classified', (t) => {
  const p = request({ kind: 'bios', mac: MAC, xid: 1 });
  p.htype = 6;
  t.is(classifyClient(p), undefined);
  const q = request({ kind: 'bios', mac: MAC, xid: 1 });
  q.hlen = 8;
  t.is(classifyClient(q), undefined);
});

test('a malformed GUID gives no uuid but is still echoed raw', (t) => {
  const p = request({ kind: 'uefi7', mac: MAC, xid: 1 });
  p.options.set(Opt.CLIENT_GUID, Buffer.from([1, 2, 3]));
  const c = classifyClient(p)!;
  t.is(c.uuid, undefined);
  t.deepEqual(c.guid, Buffer.from([1, 2, 3]));
});

test('archName covers the registry values we serve and flags the rest', (t) => {
  t.deepEqual([0, 6, 7, 9, 10, 11, 15, 16, 18, 19, 2, 12, undefined].map(archName), [
    'bios',
    'efi-ia32',
    'efi-x64',
    'efi-x64',
    'efi-arm32',
    'efi-arm64',
    'http-ia32',
    'http-x64',
    'http-arm32',
    'http-arm64',
    'unknown',
    'unknown',
    'none',
  ]);
});
