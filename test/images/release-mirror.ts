/**
 * A release mirror on loopback for `images fetch` tests: real-shaped Flatcar and Fedora CoreOS
 * trees (version.txt, .sig, .DIGESTS; stream JSON + artifacts) signed with a key the test
 * generates, served with Range, and faults on demand (a connection cut mid-body).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as openpgp from 'openpgp';

export interface SeenRequest {
  path: string;
  range?: string;
}

export interface Mirror {
  url: string;
  files: Map<string, Buffer>;
  seen: SeenRequest[];
  /** The next `times` GETs of `path` send the headers and `after` bytes of the body, then close the connection. */
  cut(path: string, after: number, times?: number): void;
  close(): Promise<void>;
}

export async function startMirror(): Promise<Mirror> {
  const files = new Map<string, Buffer>();
  const seen: SeenRequest[] = [];
  const cuts = new Map<string, { after: number; times: number }>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const range = req.headers.range;
    seen.push(range ? { path, range } : { path });
    const body = files.get(path);
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    let start = 0;
    if (range) {
      const m = /^bytes=(\d+)-$/.exec(range);
      if (!m || Number(m[1]) >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      start = Number(m[1]);
    }
    const slice = body.subarray(start);
    const headers: Record<string, string | number> = { 'content-length': slice.length, 'accept-ranges': 'bytes', etag: `"${createHash('sha1').update(body).digest('hex')}"` };
    if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(range ? 206 : 200, headers);
    const cut = cuts.get(path);
    if (cut && cut.times > 0) {
      cut.times--;
      res.write(slice.subarray(0, cut.after), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    seen,
    cut: (path, after, times = 1) => cuts.set(path, { after, times }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestKey {
  privateKey: openpgp.PrivateKey;
  armoredPublic: string;
  /** The signing subkey's id, as the fetch names the key a file was signed by. */
  signingKeyId: string;
}

/** A signing key as a release's (primary certifies, a subkey signs), ed25519 so it is made in milliseconds. */
export async function makeKey(name = 'Test Release Key'): Promise<TestKey> {
  const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name, email: 'release@example.org' }], subkeys: [{ sign: true }], format: 'object' });
  const signing = await privateKey.getSigningKey();
  return { privateKey, armoredPublic: publicKey.armor(), signingKeyId: signing.getKeyID().toHex().toUpperCase() };
}

export async function detachedSig(key: TestKey, data: Uint8Array): Promise<Buffer> {
  const sig = await openpgp.sign({ message: await openpgp.createMessage({ binary: data }), signingKeys: key.privateKey, detached: true, format: 'binary' });
  return Buffer.from(sig as Uint8Array);
}

/** A DIGESTS file as Flatcar's make_digests writes it: MD5, SHA1, SHA512 sections. */
export function digestsFile(name: string, data: Buffer): string {
  return ['md5', 'sha1', 'sha512'].map((algo) => `# ${algo.toUpperCase()} HASH\n${createHash(algo).update(data).digest('hex')}  ${name}\n`).join('');
}

export interface FlatcarTree {
  version: string;
  kernel: Buffer;
  initrd: Buffer;
  /** URL paths of the two files in the numbered folder. */
  kernelPath: string;
  initrdPath: string;
}

/** `<arch>-usr/{current,<version>}/` with version.txt(.sig) and both PXE files with .sig and .DIGESTS. */
export async function addFlatcarTree(mirror: Mirror, key: TestKey, opts: { version?: string; arch?: string; sizes?: [number, number] } = {}): Promise<FlatcarTree> {
  const version = opts.version ?? '4459.2.1';
  const arch = opts.arch ?? 'amd64';
  const [kSize, iSize] = opts.sizes ?? [1 << 20, 3 << 20];
  const kernel = randomBytes(kSize);
  const initrd = randomBytes(iSize);
  const versionTxt = Buffer.from(
    `FLATCAR_BUILD=${version.split('.')[0]}\nFLATCAR_BRANCH=${version.split('.')[1]}\nFLATCAR_PATCH=${version.split('.')[2]}\nFLATCAR_VERSION=${version}\nFLATCAR_VERSION_ID=${version}\nFLATCAR_BUILD_ID="2025-01-01-0000"\nFLATCAR_SDK_VERSION=${version}\n`,
  );
  for (const folder of ['current', version]) {
    const base = `/${arch}-usr/${folder}`;
    mirror.files.set(`${base}/version.txt`, versionTxt);
    mirror.files.set(`${base}/version.txt.sig`, await detachedSig(key, versionTxt));
    for (const [name, data] of [
      ['flatcar_production_pxe.vmlinuz', kernel],
      ['flatcar_production_pxe_image.cpio.gz', initrd],
    ] as const) {
      mirror.files.set(`${base}/${name}`, data);
      mirror.files.set(`${base}/${name}.sig`, await detachedSig(key, data));
      mirror.files.set(`${base}/${name}.DIGESTS`, Buffer.from(digestsFile(name, data)));
    }
  }
  return { version, kernel, initrd, kernelPath: `/${arch}-usr/${version}/flatcar_production_pxe.vmlinuz`, initrdPath: `/${arch}-usr/${version}/flatcar_production_pxe_image.cpio.gz` };
}

export interface FcosTree {
  release: string;
  names: { kernel: string; initramfs: string; rootfs: string };
  data: { kernel: Buffer; initramfs: Buffer; rootfs: Buffer };
  /** URL path of each artifact on the mirror (the official tree's /prod/streams/…). */
  paths: { kernel: string; initramfs: string; rootfs: string };
  stream: { architectures: Record<string, { artifacts: { metal: { release: string; formats: { pxe: Record<string, { location: string; signature: string; sha256: string }> } } } }> };
}

/** `streams/<stream>.json` naming the official origin (the fetch must rewrite it to the mirror), and the three live PXE artifacts. */
export async function addFcosTree(mirror: Mirror, key: TestKey, opts: { release?: string; stream?: string; arch?: string } = {}): Promise<FcosTree> {
  const release = opts.release ?? '44.20261110.3.0';
  const stream = opts.stream ?? 'stable';
  const arch = opts.arch ?? 'x86_64';
  const dir = `/prod/streams/${stream}/builds/${release}/${arch}`;
  const names = {
    kernel: `fedora-coreos-${release}-live-kernel-${arch}`,
    initramfs: `fedora-coreos-${release}-live-initramfs.${arch}.img`,
    rootfs: `fedora-coreos-${release}-live-rootfs.${arch}.img`,
  };
  const data = { kernel: randomBytes(1 << 20), initramfs: randomBytes(2 << 20), rootfs: randomBytes(3 << 20) };
  const pxe: Record<string, { location: string; signature: string; sha256: string }> = {};
  for (const which of ['kernel', 'initramfs', 'rootfs'] as const) {
    const p = `${dir}/${names[which]}`;
    mirror.files.set(p, data[which]);
    mirror.files.set(`${p}.sig`, await detachedSig(key, data[which]));
    pxe[which] = {
      location: `https://builds.coreos.fedoraproject.org${p}`,
      signature: `https://builds.coreos.fedoraproject.org${p}.sig`,
      sha256: createHash('sha256').update(data[which]).digest('hex'),
    };
  }
  const json = {
    stream,
    metadata: { 'last-modified': '2026-11-20T00:00:00Z', generator: 'fedora-coreos-stream-generator v0.4.0' },
    architectures: {
      [arch]: {
        artifacts: {
          metal: {
            release,
            formats: { pxe, 'raw.xz': { disk: { location: `https://builds.coreos.fedoraproject.org${dir}/fedora-coreos-${release}-metal.${arch}.raw.xz`, signature: 'x', sha256: '0'.repeat(64) } } },
          },
        },
      },
    },
  };
  mirror.files.set(`/streams/${stream}.json`, Buffer.from(JSON.stringify(json, null, 2)));
  return { release, names, data, paths: { kernel: `${dir}/${names.kernel}`, initramfs: `${dir}/${names.initramfs}`, rootfs: `${dir}/${names.rootfs}` }, stream: json as FcosTree['stream'] };
}
