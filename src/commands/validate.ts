import path from 'node:path';
import { parseArgs } from 'node:util';
import { goStyleFlags } from '../util/go-flags.ts';
import { createLogger } from '../log.ts';
import { matchboxTemplateProblem } from '../render/matchbox.ts';
import { checkMatchbox, type MatchboxCheck } from '../store/matchbox-check.ts';
import { ConfigError } from '../config.ts';
import { lookupInterface } from '../net/interface.ts';
import { checkDataPath, type DataCheck } from '../store/data-files.ts';
import { checkDhcpFiles, ownSegment, type OwnSegment } from '../store/dhcp-files.ts';

export const VALIDATE_USAGE = 'bootcfg-appliance validate [--data-path DIR] [--iface NAME]';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** The --iface segment, for judging fixed hosts that live on it; a bad name is a usage error. */
function segmentOf(iface: string): OwnSegment {
  try {
    const info = lookupInterface(iface);
    return ownSegment(iface, info.address, info.netmask);
  } catch (err) {
    throw new ConfigError(`--iface: ${(err as Error).message}`);
  }
}

/** The judgement of a directory's boot, cloud and matchbox files, shared by `validate` and `store push`. */
export async function judgeConfigs(dataPath: string): Promise<{ check: DataCheck; matchbox: MatchboxCheck | undefined; errors: { path: string; reason: string }[] }> {
  const check = await checkDataPath(dataPath);
  const matchbox = check.dataPathExists ? await checkMatchbox(dataPath, { log: createLogger({ level: 'silent', format: 'json' }), checkTemplate: matchboxTemplateProblem }) : undefined;
  return { check, matchbox, errors: [...check.problems.map((p) => ({ path: p.path, reason: p.reason })), ...(matchbox?.problems ?? [])] };
}

/**
 * `validate`: judges every file under --data-path exactly as the running store and full DHCP
 * would, so a change can be checked before it is deployed. Exit 0 with a summary (and any
 * warnings), 1 listing each bad file with its path and reason; bad flags are ConfigErrors
 * (usage, exit 2). --iface names the segment full DHCP serves, so fixed hosts on it are known
 * to be on a network we serve; without it they are checked against the declared subnets only.
 */
export async function validateCommand(args: string[], io: CommandIo): Promise<number> {
  let values: { 'data-path'?: string | undefined; iface?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: goStyleFlags(args),
      options: { 'data-path': { type: 'string' }, iface: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`validate: ${(err as Error).message}`);
  }
  if (values.help) {
    io.stdout(
      `Usage: ${VALIDATE_USAGE}\n\nChecks every boot and cloud config and every dhcp/ host and subnet file under DIR (default ./data, env BOOTCFG_DATA_PATH).\n` +
        `--iface NAME (env BOOTCFG_IFACE): the interface full DHCP serves; fixed hosts on its segment count as on a network we serve.\n`,
    );
    return 0;
  }
  const given = values['data-path'] ?? (io.env.BOOTCFG_DATA_PATH || './data');
  if (given.trim() === '') throw new ConfigError('--data-path: must not be empty');
  const iface = values.iface ?? (io.env.BOOTCFG_IFACE || undefined);
  const own = iface === undefined ? undefined : segmentOf(iface);
  const dataPath = path.resolve(given);
  const { check, matchbox, errors: configErrors } = await judgeConfigs(dataPath);
  if (!check.dataPathExists) {
    io.stderr(`${dataPath}: not a directory\n`);
    return 1;
  }
  const dhcp = await checkDhcpFiles(dataPath, own);
  const errors = [...configErrors, ...dhcp.problems.filter((p) => p.severity === 'error')];
  const warnings = dhcp.problems.filter((p) => p.severity === 'warning');
  const out = errors.length ? io.stderr : io.stdout;
  for (const p of errors) io.stderr(`${p.path}: ${p.reason}\n`);
  for (const p of warnings) out(`${p.path}: warning: ${p.reason}\n`);
  const note = !own && dhcp.hostFiles > 0 ? '  note: no --iface given, so fixed hosts were checked against the declared subnets only (--iface NAME checks the segment it serves too)\n' : '';
  if (errors.length) {
    io.stderr(note);
    io.stderr(`${errors.length} bad file(s) in ${dataPath}\n`);
    return 1;
  }
  const list = (keys: string[]) => (keys.length ? keys.join(', ') : 'none');
  io.stdout(`ok: ${check.files} file(s) in ${dataPath}\n  boot: ${list(check.configs.boot)}\n  cloud: ${list(check.configs.cloud)}\n`);
  if (matchbox) io.stdout(`  matchbox: ${matchbox.groups} group(s), ${matchbox.profiles} profile(s) in use\n`);
  if (dhcp.hosts || dhcp.subnets) io.stdout(`  dhcp: ${dhcp.hosts} fixed host(s), ${dhcp.subnets} subnet(s)${own ? ` beside ${own.label}` : ''}\n`);
  io.stdout(note);
  if (!check.configs.boot.includes('default') && !matchbox) io.stdout('  note: no boot/default, so machines without their own boot config get 404\n');
  return 0;
}
