/**
 * A real etcd cluster for tests: Debian's etcd-server (/usr/bin/etcd), each member in its own
 * network namespace, every namespace joined by a veth to one bridge that lives in a namespace
 * of its own. Nothing touches the root namespace's interfaces: the test reaches the cluster
 * through `exec`/`spawn` (a client namespace on the bridge) or by attaching its own namespaces.
 * stop() (and the Topology's process-exit hook) kills the members by PID and deletes the
 * namespaces; the data directories go with stop(). With `tls` the members serve their clients
 * over https and demand a client certificate (peers stay on http: one namespace bridge, no
 * third party on it).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { exitCleanlyOnSignals, isRoot, Namespace, sh, Topology, waitFor } from './netns.ts';

export const ETCD_BIN = '/usr/bin/etcd';
export const ETCDCTL_BIN = '/usr/bin/etcdctl';
/** Root (namespaces) and Debian's etcd-server; tests skip otherwise. */
export const canRunEtcd: boolean = isRoot && existsSync(ETCD_BIN);

/** The cluster's segment; every cluster has its own namespaces, so two clusters never clash on it. */
const SUBNET = '10.213.0';
const PREFIX_LENGTH = 24;
const BRIDGE = 'br0';
const CLIENT_PORT = 2379;
const PEER_PORT = 2380;

/** Member i's address, fixed before start so a test can put it in a server certificate's SAN. */
export function etcdMemberAddress(i: number): string {
  return `${SUBNET}.${11 + i}`;
}

/** PEM files: the CA, the members' certificate (SAN: every member's address) and a client's, for the health checks. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

export interface EtcdCluster {
  /** "http://10.x.y.z:2379" per member ("https://…" with tls) */
  clientUrls: string[];
  /** --store value: `etcd://host:port,host:port,host:port/<prefix>` */
  storeUrl(prefix: string): string;
  /** attach a new namespace (e.g. an appliance's) to the cluster's bridge; returns the address it got */
  attach(ns: string): Promise<{ address: string; prefixLength: number; iface: string }>;
  killMember(i: number): Promise<void>; // SIGKILL by PID
  restartMember(i: number): Promise<void>;
  stop(): Promise<void>; // kills members, deletes namespaces and data dirs
  /** The namespace holding the bridge; it has an address on it, so clients run there reach every member. */
  clientNs: Namespace;
  /** Runs a command in clientNs (e.g. etcdctl, curl) and returns its stdout. */
  exec(cmd: string, args?: string[]): Promise<string>;
  /** etcdctl against every member, from clientNs. */
  etcdctl(args: string[]): Promise<string>;
  /** The topology the namespaces belong to, for callers that make more namespaces with the same teardown. */
  topo: Topology;
}

interface Member {
  name: string;
  ns: Namespace;
  address: string;
  dataDir: string;
  child: ChildProcess | undefined;
}

function memberArgs(m: Member, all: Member[], token: string, state: 'new' | 'existing', tls: EtcdTls | undefined): string[] {
  const peer = (x: Member) => `http://${x.address}:${PEER_PORT}`;
  const scheme = tls ? 'https' : 'http';
  const serverTls = tls ? ['--client-cert-auth', '--trusted-ca-file', tls.ca, '--cert-file', tls.cert, '--key-file', tls.key] : [];
  return [
    ...serverTls,
    '--name',
    m.name,
    '--data-dir',
    m.dataDir,
    '--listen-client-urls',
    `${scheme}://${m.address}:${CLIENT_PORT}`,
    '--advertise-client-urls',
    `${scheme}://${m.address}:${CLIENT_PORT}`,
    '--listen-peer-urls',
    peer(m),
    '--initial-advertise-peer-urls',
    peer(m),
    '--initial-cluster',
    all.map((x) => `${x.name}=${peer(x)}`).join(','),
    '--initial-cluster-state',
    state,
    '--initial-cluster-token',
    token,
    '--logger',
    'zap',
    '--log-level',
    'warn',
  ];
}

/** Starts the members and resolves once every one reports healthy. `tag` prefixes the namespace names (e.g. `bca-etcd`). */
export async function startEtcdCluster(opts: { tag: string; members?: number; tls?: EtcdTls }): Promise<EtcdCluster> {
  exitCleanlyOnSignals();
  const count = opts.members ?? 3;
  const scheme = opts.tls ? 'https' : 'http';
  // etcdctl's own TLS flags, so the health checks and etcdctl() reach a member that demands a client certificate.
  const ctlTls = opts.tls ? ['--cacert', opts.tls.ca, '--cert', opts.tls.clientCert, '--key', opts.tls.clientKey] : [];
  const topo = new Topology({ prefix: `${opts.tag}-` });
  const dataRoot = await mkdtemp(path.join(tmpdir(), `${opts.tag}-etcd-`));
  const members: Member[] = [];
  const output = new Map<number, string>();
  let attached = 0;
  let stopped = false;

  const spawnMember = (i: number, state: 'new' | 'existing') => {
    const m = members[i]!;
    const options: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'] };
    const child = m.ns.spawn(ETCD_BIN, memberArgs(m, members, `${opts.tag}-${path.basename(dataRoot)}`, state, opts.tls), options);
    output.set(i, '');
    const keep = (chunk: Buffer) => output.set(i, `${output.get(i) ?? ''}${chunk.toString('utf8')}`.slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    m.child = child;
  };
  const healthy = async (i: number) => {
    // etcdctl writes its verdict to stderr; the exit status is the verdict (sh throws on non-zero).
    await clientNs.exec(ETCDCTL_BIN, [...ctlTls, '--endpoints', `${scheme}://${members[i]!.address}:${CLIENT_PORT}`, '--dial-timeout', '1s', '--command-timeout', '2s', 'endpoint', 'health']);
    return true;
  };
  const waitHealthy = (i: number) =>
    waitFor(`etcd member ${i} healthy`, () => healthy(i), 20_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}; its output: ${output.get(i) ?? ''}`);
    });

  const clientNs = await topo.namespace('etcbr').catch(async (err) => {
    await rm(dataRoot, { recursive: true, force: true });
    throw err;
  });
  try {
    await topo.bridge(clientNs, BRIDGE, `${SUBNET}.1/${PREFIX_LENGTH}`);
    for (let i = 0; i < count; i++) {
      const ns = await topo.namespace(`etc${i}`);
      const address = etcdMemberAddress(i);
      await topo.veth(ns, 'eth0', clientNs, `m${i}`, `${address}/${PREFIX_LENGTH}`);
      await topo.enslave(clientNs, `m${i}`, BRIDGE);
      members.push({ name: `m${i}`, ns, address, dataDir: path.join(dataRoot, `m${i}`), child: undefined });
    }
    for (let i = 0; i < count; i++) spawnMember(i, 'new');
    await Promise.all(members.map((_, i) => waitHealthy(i)));
  } catch (err) {
    for (const m of members) if (m.child?.pid) process.kill(m.child.pid, 'SIGKILL');
    await topo.destroy();
    await rm(dataRoot, { recursive: true, force: true });
    throw err;
  }

  const clientUrls = members.map((m) => `${scheme}://${m.address}:${CLIENT_PORT}`);
  const killMember = async (i: number) => {
    const child = members[i]?.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGKILL');
    await exited;
  };
  const cluster: EtcdCluster = {
    clientUrls,
    storeUrl: (prefix) => `etcd://${members.map((m) => `${m.address}:${CLIENT_PORT}`).join(',')}${prefix ? `/${prefix.replace(/^\/+/, '')}` : ''}`,
    async attach(nsName) {
      const k = attached++;
      const address = `${SUBNET}.${100 + k}`;
      const iface = `etcd${k}`;
      await topo.veth(new Namespace(nsName, topo), iface, clientNs, `a${k}`, `${address}/${PREFIX_LENGTH}`);
      await topo.enslave(clientNs, `a${k}`, BRIDGE);
      return { address, prefixLength: PREFIX_LENGTH, iface };
    },
    killMember,
    async restartMember(i) {
      await killMember(i);
      spawnMember(i, 'existing');
      await waitHealthy(i);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (let i = 0; i < members.length; i++) await killMember(i);
      await topo.destroy();
      await rm(dataRoot, { recursive: true, force: true });
    },
    clientNs,
    exec: (cmd, args = []) => clientNs.exec(cmd, args),
    etcdctl: (args) => sh('ip', ['netns', 'exec', clientNs.name, ETCDCTL_BIN, ...ctlTls, '--endpoints', clientUrls.join(','), ...args]),
    topo,
  };
  return cluster;
}
