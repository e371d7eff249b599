import path from 'node:path';
import { parseArgs } from 'node:util';
import { goStyleFlags } from '../util/go-flags.ts';
import { ConfigError } from '../config.ts';
import { checkDataPath } from '../store/data-files.ts';

export const VALIDATE_USAGE = 'bootcfg-appliance validate [--data-path DIR]';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/**
 * `validate`: judges every file under --data-path exactly as the running store would,
 * so a change can be checked before it is deployed. Exit 0 with a summary, 1 listing
 * each bad file with its path and reason; bad flags are ConfigErrors (usage, exit 2).
 */
export async function validateCommand(args: string[], io: CommandIo): Promise<number> {
  let values: { 'data-path'?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: goStyleFlags(args), options: { 'data-path': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError(`validate: ${(err as Error).message}`);
  }
  if (values.help) {
    io.stdout(`Usage: ${VALIDATE_USAGE}\n\nChecks every boot and cloud config under DIR (default ./data, env BOOTCFG_DATA_PATH).\n`);
    return 0;
  }
  const given = values['data-path'] ?? (io.env.BOOTCFG_DATA_PATH || './data');
  if (given.trim() === '') throw new ConfigError('--data-path: must not be empty');
  const dataPath = path.resolve(given);
  const check = await checkDataPath(dataPath);
  if (!check.dataPathExists) {
    io.stderr(`${dataPath}: not a directory\n`);
    return 1;
  }
  if (check.problems.length) {
    for (const p of check.problems) io.stderr(`${p.path}: ${p.reason}\n`);
    io.stderr(`${check.problems.length} bad file(s) in ${dataPath}\n`);
    return 1;
  }
  const list = (keys: string[]) => (keys.length ? keys.join(', ') : 'none');
  io.stdout(`ok: ${check.files} file(s) in ${dataPath}\n  boot: ${list(check.configs.boot)}\n  cloud: ${list(check.configs.cloud)}\n`);
  if (!check.configs.boot.includes('default')) io.stdout('  note: no boot/default, so machines without their own boot config get 404\n');
  return 0;
}
