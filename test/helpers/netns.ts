/**
 * Network namespaces for tests that need real interfaces (DHCP, TFTP under loss, VM boots).
 * Everything a Topology creates lives inside namespaces it made itself; destroy() (and a
 * process-exit hook, for crashes and timeouts) removes them and ends the processes it started,
 * by PID. Nothing is ever attached to a real interface or routed out.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const isRoot = process.getuid?.() === 0;
export const NS_PREFIX = 'bca-';

let counter = 0;
const live = new Set<Topology>();

process.on('exit', () => {
  for (const topo of live) topo.destroySync();
});

let signalsHooked = false;

/**
 * A SIGTERM (ava ends a worker that way on its global timeout) or SIGINT would end this process
 * without 'exit' hooks, leaving daemons and namespaces behind; exiting properly runs Topology's
 * hook, which kills every child by PID and deletes the namespaces. Callers with their own
 * handler (the demo) keep theirs.
 */
export function exitCleanlyOnSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const [sig, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(code));
  }
}

export async function sh(cmd: string, args: string[], opts: { input?: string } = {}): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

export class Namespace {
  constructor(
    readonly name: string,
    private readonly topo: Topology,
  ) {}

  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string, args: string[] = []): Promise<string> {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  /** Starts a long-running process inside the namespace; it is killed when the topology is destroyed. */
  spawn(cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.topo.track(child);
    return child;
  }

  ip(...args: string[]): Promise<string> {
    return sh('ip', ['-n', this.name, ...args]);
  }
}

export class Topology {
  private readonly namespaces: Namespace[] = [];
  private readonly children = new Set<ChildProcess>();
  /** Short, for interface names (at most 15 characters). */
  private readonly id = `${process.pid % 100000}${(counter++).toString(36)}`;
  /** The creator's PID then a dot: scripts/test.sh leaves a namespace alone while the process that made it runs. */
  private readonly nsId = `${process.pid}.${(counter++).toString(36)}`;
  private readonly prefix: string;

  /** `prefix` starts every namespace name (default `bca-`); a helper's tag keeps its namespaces recognisable. */
  constructor(opts: { prefix?: string } = {}) {
    this.prefix = opts.prefix ?? NS_PREFIX;
    live.add(this);
  }

  /** Creates a namespace with loopback up. `label` is kept short: interface and ns names are length-limited. */
  async namespace(label: string): Promise<Namespace> {
    const name = `${this.prefix}${this.nsId}-${label}`;
    await sh('ip', ['netns', 'add', name]);
    const ns = new Namespace(name, this);
    this.namespaces.push(ns);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** A veth pair: `a` end in nsA, `b` end in nsB, each optionally with an address (CIDR) and up. */
  async veth(nsA: Namespace, ifA: string, nsB: Namespace, ifB: string, addrA?: string, addrB?: string): Promise<void> {
    const tmpA = `v${this.id}a${counter++}`.slice(0, 15);
    const tmpB = `v${this.id}b${counter++}`.slice(0, 15);
    await sh('ip', ['link', 'add', tmpA, 'netns', nsA.name, 'type', 'veth', 'peer', 'name', tmpB, 'netns', nsB.name]);
    await nsA.ip('link', 'set', tmpA, 'name', ifA);
    await nsB.ip('link', 'set', tmpB, 'name', ifB);
    if (addrA) await nsA.ip('addr', 'add', addrA, 'dev', ifA);
    if (addrB) await nsB.ip('addr', 'add', addrB, 'dev', ifB);
    await nsA.ip('link', 'set', ifA, 'up');
    await nsB.ip('link', 'set', ifB, 'up');
  }

  /** A bridge inside ns, optionally with an address (CIDR). */
  async bridge(ns: Namespace, name: string, addr?: string): Promise<void> {
    await ns.ip('link', 'add', name, 'type', 'bridge');
    // No STP delay: ports forward as soon as they are up, as a lab bridge would.
    await ns.ip('link', 'set', name, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
    if (addr) await ns.ip('addr', 'add', addr, 'dev', name);
    await ns.ip('link', 'set', name, 'up');
  }

  /** Moves an interface of ns into a bridge of the same namespace. */
  async enslave(ns: Namespace, iface: string, bridge: string): Promise<void> {
    await ns.ip('link', 'set', iface, 'master', bridge);
    await ns.ip('link', 'set', iface, 'up');
  }

  /** A tap inside ns attached to a bridge there; qemu opens it with `-netdev tap,ifname=…,script=no`. */
  async tap(ns: Namespace, name: string, bridge: string): Promise<void> {
    await ns.ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
    await this.enslave(ns, name, bridge);
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  async destroy(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const exited = await Promise.race([new Promise<boolean>((r) => child.once('exit', () => r(true))), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
        if (!exited) child.kill('SIGKILL');
      }
    }
    this.children.clear();
    for (const ns of this.namespaces.splice(0).reverse()) {
      await sh('ip', ['netns', 'del', ns.name]).catch(() => undefined);
    }
    live.delete(this);
  }

  /** Used from the process-exit hook, where nothing asynchronous runs. */
  destroySync(): void {
    for (const child of this.children)
      if (child.pid && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    for (const ns of this.namespaces.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    live.delete(this);
  }
}

/** Waits until `probe` resolves truthy, polling; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
