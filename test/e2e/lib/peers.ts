/**
 * The neighbours a real lab has, run inside a test namespace:
 * - dnsmasq (Debian's dnsmasq-base) as the site's plain DHCP server (proxy-mode scenarios), or
 *   configured as a complete PXE server (DHCP + TFTP of iPXE + chain to an HTTP script): the
 *   reference set-up that proves the harness and that bench/boot compares us against.
 * - nginx (nginx-light) as the static HTTP server of that reference set-up.
 * Both run in the foreground as children of the Topology (ended by PID when it is destroyed).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Namespace } from '../../helpers/netns.ts';
import { waitFor } from '../../helpers/netns.ts';
import { orphanSafe, stopChild } from './qemu.ts';

export interface Daemon {
  child: ChildProcess;
  /** What it printed so far (stdout + stderr, or its log file). */
  log(): string;
  stop(): Promise<void>;
}

function collect(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  return () => out;
}

export interface DnsmasqOptions {
  iface: string;
  range: { start: string; end: string };
  netmask?: string;
  /** Omit for a PXE-unaware site DHCP server. */
  pxe?: {
    /** Folder holding undionly.kpxe and ipxe.efi, served by dnsmasq's TFTP. */
    tftpRoot: string;
    /** The URL iPXE chains to once it runs (matched on iPXE's user class, wire.md). */
    ipxeScriptUrl: string;
  };
  /** Extra dnsmasq.conf lines. */
  extra?: string[];
  /** `log-dhcp` (every option of every exchange; default on, for debugging a lab); off leaves dnsmasq's one line per packet. */
  logDhcp?: boolean;
}

/** dnsmasq -k in ns. `no-ping` so new leases don't wait 3 s for an ICMP probe (peers.md). */
export async function startDnsmasq(ns: Namespace, o: DnsmasqOptions): Promise<Daemon> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bca-dnsmasq-'));
  const lines = [
    `interface=${o.iface}`,
    'bind-interfaces',
    'port=0',
    'no-resolv',
    'no-hosts',
    'no-ping',
    ...(o.logDhcp === false ? [] : ['log-dhcp']),
    'log-facility=-',
    'user=root',
    `dhcp-leasefile=${path.join(dir, 'leases')}`,
    `dhcp-range=${o.range.start},${o.range.end},${o.netmask ?? '255.255.255.0'},1h`,
  ];
  if (o.pxe) {
    lines.push(
      'enable-tftp',
      `tftp-root=${o.pxe.tftpRoot}`,
      // iPXE sends option 77 "iPXE" (wire.md): that, not option 60, tells the firmware from iPXE.
      'dhcp-userclass=set:ipxe,iPXE',
      'dhcp-match=set:efi64,option:client-arch,7',
      'dhcp-match=set:efi64,option:client-arch,9',
      'dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe',
      'dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi',
      `dhcp-boot=tag:ipxe,${o.pxe.ipxeScriptUrl}`,
    );
  }
  lines.push(...(o.extra ?? []));
  const conf = path.join(dir, 'dnsmasq.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const child = ns.spawn(...orphanSafe('dnsmasq', ['-k', `--conf-file=${conf}`, '--pid-file']));
  const log = collect(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await Promise.race([
    waitFor('dnsmasq to start', () => /started, version/.test(log()), 10_000),
    exited.then(() => {
      throw new Error(`dnsmasq exited: ${log()}`);
    }),
  ]).catch((err: unknown) => {
    void stopChild(child).then(() => rmSync(dir, { recursive: true, force: true }));
    throw err;
  });
  return {
    child,
    log,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx serving `root` on `listen` (ADDR:PORT) from a throwaway prefix; single process, foreground. */
export async function startNginx(ns: Namespace, o: { root: string; listen: string; workerConnections?: number }): Promise<Daemon> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'bca-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(prefix, d));
  const errorLog = path.join(prefix, 'error.log');
  const accessLog = path.join(prefix, 'access.log');
  const conf = `daemon off;
master_process off;
worker_processes 1;
user root;
pid ${prefix}/nginx.pid;
error_log ${errorLog} info;
events { worker_connections ${o.workerConnections ?? 256}; }
http {
  access_log ${accessLog};
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  default_type application/octet-stream;
  types { text/plain ipxe; }
  server {
    listen ${o.listen};
    root ${o.root};
  }
}
`;
  writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const child = ns.spawn(...orphanSafe('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', errorLog]));
  const out = collect(child);
  const log = () => out() + (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '') + (existsSync(accessLog) ? readFileSync(accessLog, 'utf8') : '');
  const [host, port] = o.listen.split(':') as [string, string];
  const listening = waitFor(
    'nginx to listen',
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${log()}`);
      return (await ns.exec('ss', ['-Hltn', `sport = :${port}`])).includes(host === '0.0.0.0' ? `:${port}` : `${host}:${port}`);
    },
    10_000,
    100,
  );
  await listening.catch(async (err: unknown) => {
    await stopChild(child);
    rmSync(prefix, { recursive: true, force: true });
    throw err;
  });
  return {
    child,
    log,
    async stop() {
      await stopChild(child);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
