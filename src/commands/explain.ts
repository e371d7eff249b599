import { bootSettings, explainer } from '../appliance.ts';
import { ConfigError, type AppConfig } from '../config.ts';
import { formatExplanation } from '../explain.ts';
import { FirmwareCatalog } from '../firmware/catalog.ts';
import { createLogger } from '../log.ts';
import { parseMacInput, type Mac } from '../net/mac.ts';
import { parseUuidInput, type Uuid } from '../net/uuid.ts';
import { FileStore } from '../store/file-store.ts';
import { MatchboxStore } from '../store/matchbox-store.ts';
import { matchboxTemplateProblem } from '../render/matchbox.ts';

export const EXPLAIN_USAGE = 'bootcfg-appliance explain --mac MAC [--uuid UUID] [--label K=V ...] [--json] [serve options, e.g. --data-path DIR]';

export interface ExplainIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The serve flags and BOOTCFG_* environment, resolved as `serve` would resolve them. */
  loadConfig: (serveArgs: string[]) => AppConfig;
}

const OWN_FLAGS = new Set(['--mac', '--uuid', '--label']);

/** Splits explain's own flags from the serve flags, which go through the serve parser unchanged. */
function splitArgs(args: string[]): { mac?: string; uuid?: string; labels: Record<string, string>; json: boolean; help: boolean; rest: string[] } {
  const out: { mac?: string; uuid?: string; labels: Record<string, string>; json: boolean; help: boolean; rest: string[] } = { labels: {}, json: false, help: false, rest: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (OWN_FLAGS.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) throw new ConfigError(`explain: ${name} needs a value`);
      if (name === '--mac') out.mac = value;
      else if (name === '--uuid') out.uuid = value;
      else {
        // A label as a request would carry it (hostname, serial, os, …), for matchbox groups' selectors.
        const m = /^([^=\s]+)=(.*)$/.exec(value);
        if (!m) throw new ConfigError(`explain: --label wants KEY=VALUE, got "${value}"`);
        out.labels[m[1]!] = m[2]!;
      }
    } else if (arg === '--json') out.json = true;
    else if (arg === '--help' || arg === '-h') out.help = true;
    else out.rest.push(arg);
  }
  return out;
}

/**
 * `explain`: loads the data and firmware the way `serve` would (same flags, same BOOTCFG_*
 * environment) and prints which files answer this machine and what DHCP hands each
 * firmware. Exit 0 when a boot config answers, 1 when none does (or it is broken).
 */
export async function explainCommand(args: string[], io: ExplainIo): Promise<number> {
  const flags = splitArgs(args);
  if (flags.help) {
    io.stdout(
      `Usage: ${EXPLAIN_USAGE}\n\nSays which boot and cloud file would answer this machine (and which lookups missed),\nand what DHCP would hand it as BIOS, UEFI x64, UEFI arm64, UEFI HTTP Boot and iPXE.\nReads the same flags and BOOTCFG_* variables as serve.\n`,
    );
    return 0;
  }
  let mac: Mac | undefined;
  let uuid: Uuid | undefined;
  if (flags.mac !== undefined) {
    const parsed = parseMacInput(flags.mac, '--mac');
    if (!parsed.ok) throw new ConfigError(parsed.reason);
    mac = parsed.mac;
  }
  if (flags.uuid !== undefined && flags.uuid !== '') {
    const parsed = parseUuidInput(flags.uuid, '--uuid');
    if (!parsed.ok) throw new ConfigError(parsed.reason);
    uuid = parsed.uuid;
  }
  if (!mac && !uuid) throw new ConfigError('explain: give --mac (and --uuid if the machine reports one)');

  const config = io.loadConfig(flags.rest);
  // The explanation reports problems itself; store and firmware log lines would only repeat them.
  const log = createLogger({ level: 'silent', format: 'json' });
  const firmware = await FirmwareCatalog.load(config.firmwarePath, log);
  const store = new FileStore(config.dataPath, { log });
  await store.reload();
  const matchbox = new MatchboxStore(config.dataPath, { log, checkTemplate: matchboxTemplateProblem });
  await matchbox.reload();
  try {
    const e = explainer({ config, store, matchbox, boot: bootSettings(config, firmware) })({ mac, uuid, labels: Object.keys(flags.labels).length ? flags.labels : undefined });
    io.stdout(flags.json ? `${JSON.stringify(e, null, 2)}\n` : formatExplanation(e));
    return e.boot.answeredBy && e.boot.answeredBy.outcome !== 'broken' ? 0 : 1;
  } finally {
    await store.close();
    await matchbox.close();
  }
}
