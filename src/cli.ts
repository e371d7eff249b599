/** argv and the environment: which command, its flags and BOOTCFG_* variables, usage errors (exit 2). */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { diagnose, formatReport } from './commands/doctor.ts';
import { explainCommand } from './commands/explain.ts';
import { probeDhcp } from './dhcp/probe.ts';
import { imagesCommand } from './commands/images.ts';
import { serveCommand } from './commands/serve.ts';
import { storeCommand } from './commands/store.ts';
import { validateCommand } from './commands/validate.ts';
import { ConfigError, IPV6_RA_QUENCH_VALUES, resolveConfig, type AppConfig, type RawOptions } from './config.ts';
import { FirmwareTrustError } from './firmware/catalog.ts';
import { StoreUrlError } from './store/etcd-connection.ts';
import { InterfaceError, lookupInterface } from './net/interface.ts';
import { goStyleFlags } from './util/go-flags.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const SERVE_OPTIONS = {
  iface: { type: 'string' },
  address: { type: 'string' },
  'base-url': { type: 'string' },
  'data-path': { type: 'string' },
  store: { type: 'string' },
  'store-ca': { type: 'string' },
  'store-cert': { type: 'string' },
  'store-key': { type: 'string' },
  'images-path': { type: 'string' },
  'firmware-path': { type: 'string' },
  'efi-firmware': { type: 'string' },
  'uefi-loader': { type: 'string' },
  dhcp: { type: 'string' },
  'dhcp-range': { type: 'string' },
  'dhcp-router': { type: 'string' },
  'dhcp-dns': { type: 'string' },
  'lease-time': { type: 'string' },
  'lease-file': { type: 'string' },
  'tftp-address': { type: 'string' },
  'tftp-max-per-client': { type: 'string' },
  'tftp-engine': { type: 'string' },
  'http-sendfile': { type: 'string' },
  // A string, but it may stand alone (= on, as when it was a boolean): see withOptionalValues.
  'ipv6-ra-quench': { type: 'string' },
  'stall-after': { type: 'string' },
  name: { type: 'string' },
  'fleet-ttl': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const satisfies ParseArgsConfig['options'];

type ServeFlag = Exclude<keyof typeof SERVE_OPTIONS, 'help' | 'version'>;

export const USAGE = `Usage: bootcfg-appliance [serve] [options]
       bootcfg-appliance validate [--data-path DIR] [--iface NAME]
       bootcfg-appliance explain --mac MAC [--uuid UUID] [--json] [options]
       bootcfg-appliance doctor [--iface NAME] [--json] [--no-probe] [options]
       bootcfg-appliance images fetch debian|flatcar|fedora-coreos [options]   (images --help)
       bootcfg-appliance store push|pull|diff DIR --store etcd://HOST:PORT[,...][/PREFIX]   (store --help)

Boots machines on one network segment: ProxyDHCP or DHCP, TFTP for iPXE firmware,
and the bootcfg HTTP API. Without --iface it is the plain bootcfg HTTP service.

Options (each also read from the environment variable shown; bootcfg's Go-style
-flag=value and -flag value are taken too):
  --iface NAME             interface to serve DHCP/TFTP on; its IPv4 is advertised  BOOTCFG_IFACE
  --address HOST:PORT      HTTP listen address (default 0.0.0.0:8080)             BOOTCFG_ADDRESS
  --base-url URL           URL clients are sent to (default http://<iface IPv4>:<port>)  BOOTCFG_BASE_URL
  --data-path DIR          boot and cloud configs (default ./data)                BOOTCFG_DATA_PATH
  --store etcd://HOST:PORT[,HOST:PORT...][/PREFIX]  read the configs from etcd instead
                           of --data-path (watched; the last good ones keep serving
                           through an outage; default prefix /bootcfg)            BOOTCFG_STORE
  --store-ca FILE, --store-cert FILE, --store-key FILE  TLS to etcd: the members' CA,
                           and a client certificate and its key  BOOTCFG_STORE_CA, _CERT, _KEY
  --images-path DIR        kernels and initrds served under /images (default ./images)  BOOTCFG_IMAGES_PATH
  --firmware-path DIR      iPXE firmware served over TFTP (default ./firmware)    BOOTCFG_FIRMWARE_PATH
  --efi-firmware ipxe.efi|snponly.efi  iPXE build for x86 EFI clients (default ipxe.efi)  BOOTCFG_EFI_FIRMWARE
  --uefi-loader ipxe|grub  loader for x86-64 UEFI PXE machines whose boot config names no
                           "loader": iPXE, or the signed shim → GRUB chain for Secure Boot
                           (default ipxe; arm64 always boots GRUB)                  BOOTCFG_UEFI_LOADER
  --dhcp proxy|full|off|auto  DHCP mode (default proxy with --iface, off without); auto
                           asks the segment first: full when no DHCP server answers (with
                           --dhcp-range), proxy beside one                         BOOTCFG_DHCP
  --dhcp-range START,END   address pool, full mode only                           BOOTCFG_DHCP_RANGE
  --dhcp-router IP         router (option 3) handed out in full mode              BOOTCFG_DHCP_ROUTER
  --dhcp-dns IP[,IP...]    DNS servers (option 6) handed out in full mode         BOOTCFG_DHCP_DNS
  --lease-time SECONDS     lease time in full mode (default 3600)                 BOOTCFG_LEASE_TIME
  --lease-file PATH        lease database (default <data-path>/state/leases.json) BOOTCFG_LEASE_FILE
  --tftp-address HOST:PORT|off  TFTP listen address (default <iface IPv4>:69 with --iface, off without)  BOOTCFG_TFTP_ADDRESS
  --tftp-max-per-client N  TFTP transfers in flight at once from one IP address, 1..1000;
                           more get an ERROR (default 8)                           BOOTCFG_TFTP_MAX_PER_CLIENT
  --tftp-engine worker|event-loop  who sends TFTP blocks: a thread of their own through
                           libc (default), or Node's event loop                    BOOTCFG_TFTP_ENGINE
  --http-sendfile on|off   image bodies by sendfile(2) from a thread of their own (default
                           on), or read and written through buffers                BOOTCFG_HTTP_SENDFILE
  --ipv6-ra-quench [on|off|auto]  answer IPv6 router solicitations with router lifetime 0 so
                           iPXE stops waiting for IPv6 (~13 s); full mode only, needs
                           CAP_NET_RAW. auto (the full-mode default) listens first and never
                           answers where an IPv6 router advertises; alone = on  BOOTCFG_IPV6_RA_QUENCH
  --stall-after SECONDS    a boot whose next step does not come within this long is
                           logged as stalled, with what never came (default 60)   BOOTCFG_STALL_AFTER
  --name NAME              this appliance in the fleet view and on the leases it
                           writes, with --store etcd://… (default the host name)  BOOTCFG_NAME
  --fleet-ttl SECONDS      how long a stopped appliance's machines stay in the
                           fleet view, with --store etcd://… (default 30)         BOOTCFG_FLEET_TTL
  --log-level LEVEL        trace|debug|info|warn|error|fatal|silent (default info) BOOTCFG_LOG_LEVEL
  --log-format json|pretty (default pretty on a TTY, json otherwise)              BOOTCFG_LOG_FORMAT
  -h, --help               show this help
  -V, --version            show the version
`;

export class UsageError extends Error {}

/** Flags that may stand alone or take one of these words: `--ipv6-ra-quench`, `--ipv6-ra-quench auto`, `--ipv6-ra-quench=off`. */
const OPTIONAL_VALUE_FLAGS: Partial<Record<keyof typeof SERVE_OPTIONS, readonly string[]>> = { 'ipv6-ra-quench': IPV6_RA_QUENCH_VALUES };

/** A flag of OPTIONAL_VALUE_FLAGS not followed by one of its words becomes `--flag=true`, so parseArgs (string option) does not swallow the next flag. */
function withOptionalValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const words = arg.startsWith('--') ? OPTIONAL_VALUE_FLAGS[arg.slice(2) as keyof typeof SERVE_OPTIONS] : undefined;
    const next = args[i + 1];
    out.push(words && (next === undefined || !words.includes(next)) ? `${arg}=true` : arg);
  }
  return out;
}

export function envName(flag: string): string {
  return `BOOTCFG_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** Flags win over BOOTCFG_* variables; unset or empty variables are ignored. */
export function readServeOptions(args: string[], env: NodeJS.ProcessEnv): { raw: RawOptions; help: boolean; version: boolean } {
  let values: Partial<Record<keyof typeof SERVE_OPTIONS, string | boolean | undefined>>;
  try {
    ({ values } = parseArgs({ args: withOptionalValues(goStyleFlags(args)), options: SERVE_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const raw: Record<string, string> = {};
  for (const flag of Object.keys(SERVE_OPTIONS) as (keyof typeof SERVE_OPTIONS)[]) {
    if (flag === 'help' || flag === 'version') continue;
    const fromFlag = values[flag as ServeFlag];
    const fromEnv = env[envName(flag)];
    if (typeof fromFlag === 'string') raw[flag] = fromFlag;
    else if (fromFlag === true) raw[flag] = 'true';
    else if (fromEnv !== undefined && fromEnv !== '') raw[flag] = fromEnv;
  }
  return { raw: raw as RawOptions, help: values.help === true, version: values.version === true };
}

export function buildConfig(raw: RawOptions): AppConfig {
  return resolveConfig(raw, { lookupInterface, isTty: Boolean(process.stdout.isTTY) });
}

/** --dhcp auto: one DISCOVER on --iface decides between full and proxy; the reason is logged at start. */
async function resolveAutoDhcp(raw: RawOptions): Promise<string | undefined> {
  const asked: string | undefined = raw.dhcp;
  if (asked !== 'auto') return undefined;
  if (!raw.iface) throw new UsageError('--dhcp auto: needs --iface (the segment to ask)');
  const probe = await probeDhcp({ iface: raw.iface, hasRange: raw['dhcp-range'] !== undefined });
  raw.dhcp = probe.advice.mode;
  // Beside a DHCP server the range (and the RA quench, full mode's) stay unused rather than refused.
  const unused = probe.advice.mode === 'proxy' ? (['dhcp-range', 'ipv6-ra-quench'] as const).filter((f) => raw[f] !== undefined) : [];
  for (const f of unused) delete raw[f];
  return `--dhcp auto: ${probe.advice.mode}: ${probe.advice.why}${unused.length ? ` (${unused.map((f) => `--${f}`).join(', ')} unused)` : ''}${probe.advice.warning ? `; warning: ${probe.advice.warning}` : ''}`;
}

async function serve(args: string[]): Promise<number> {
  const { raw, help, version } = readServeOptions(args, process.env);
  if (help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (version) {
    process.stdout.write(`bootcfg-appliance ${pkg.version}\n`);
    return 0;
  }
  const auto = await resolveAutoDhcp(raw);
  await serveCommand({ config: buildConfig(raw), version: pkg.version, baseUrlGiven: raw['base-url'] !== undefined, reload: () => buildConfig(raw), notes: auto ? [auto] : [] });
  return -1; // keep running until a signal
}

export type Command = (args: string[]) => Promise<number>;

async function validate(args: string[]): Promise<number> {
  return validateCommand(args, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env });
}

async function explain(args: string[]): Promise<number> {
  return explainCommand(args, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    loadConfig: (serveArgs) => {
      const { raw, help, version } = readServeOptions(serveArgs, process.env);
      if (help || version) throw new UsageError('explain: --help and --version come before the command');
      return buildConfig(raw);
    },
  });
}

async function doctor(args: string[]): Promise<number> {
  const json = args.includes('--json') || args.includes('-json');
  const noProbe = args.includes('--no-probe') || args.includes('-no-probe');
  const { raw } = readServeOptions(
    args.filter((a) => !['--json', '-json', '--no-probe', '-no-probe'].includes(a)),
    process.env,
  );
  const hasRange = raw['dhcp-range'] !== undefined;
  const asked: string | undefined = raw.dhcp;
  if (asked === 'auto') raw.dhcp = hasRange ? 'full' : 'proxy';
  const report = await diagnose(buildConfig(raw), { probe: !noProbe, hasRange });
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.findings.some((f) => f.verdict === 'fail') ? 1 : 0;
}

async function images(args: string[]): Promise<number> {
  return imagesCommand(args, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env, tty: process.stderr.isTTY ? process.stderr : undefined });
}

async function store(args: string[]): Promise<number> {
  return storeCommand(args, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env });
}

export const COMMANDS: Record<string, Command> = { serve, validate, explain, doctor, images, store };

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const command = first && !first.startsWith('-') ? first : 'serve';
  const args = first && !first.startsWith('-') ? rest : argv;
  const run = COMMANDS[command];
  try {
    if (!run) throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return await run(args);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof InterfaceError) {
      process.stderr.write(`bootcfg-appliance: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof FirmwareTrustError || err instanceof StoreUrlError) {
      process.stderr.write(`bootcfg-appliance: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`bootcfg-appliance: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
