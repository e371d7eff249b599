/**
 * GRUB configs from the same boot configs /ipxe renders: the dispatcher every machine reads
 * first (grub/grub.cfg), and the per-machine config it hands over to. Pure text in, text out.
 */
import type { BootConfig } from '../store/boot-config.ts';
import { resolveAssetUrl } from './assets.ts';
import { renderCmdline } from './cmdline.ts';

/**
 * What GRUB fetches first, from the server and prefix it booted with. It names the machine by
 * the booting NIC's MAC and the SMBIOS UUID (both images carry the smbios module), then hands
 * over to the per-machine config over the same TFTP server: `boot.cfg?mac=…&uuid=…`, the
 * query /grub takes over HTTP. Double quotes keep `?` from GRUB's wildcard expansion. Should
 * the hand-over fail, GRUB would fall through to a `grub>` prompt nobody sees: back to the
 * firmware instead, after saying so.
 */
export const GRUB_DISPATCHER = `# bootcfg-appliance: picks this machine's config by MAC and SMBIOS UUID
set timeout=0
smbios --type 1 --get-uuid 8 --set bootcfg_uuid
configfile "\${prefix}/boot.cfg?mac=\${net_default_mac}&uuid=\${bootcfg_uuid}"
echo 'bootcfg-appliance: the per-machine config could not be loaded over TFTP'
sleep 10
exit 1
`;

/** Where GRUB fetches what a config names: over TFTP from this appliance, or over HTTP (GRUB builds with http). */
export type GrubTransport = 'tftp' | 'http';

export interface GrubMachine {
  mac?: string | undefined;
  uuid?: string | undefined;
}

export interface RenderedGrub {
  text: string;
  /** Paths or URLs as GRUB will fetch them, for the timeline (which files the boot still needs). */
  kernel: string;
  initrds: string[];
  /** What will not work with this GRUB (an https:// kernel, an http:// one over TFTP-only GRUB). */
  problems: string[];
}

/** GRUB's quoting (like sh): bare when safe, else single quotes, with `'` written as `'\''`. */
export function grubWord(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_.,:/=+@%^-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * The kernel's own word splitting: spaces separate, double quotes group (`foo="a b"` is one
 * argument). Each word then gets GRUB quoting, so the kernel sees exactly the rendered line.
 */
export function cmdlineWords(cmdline: string): string[] {
  return cmdline.match(/(?:[^\s"]+|"[^"]*"?)+/g) ?? [];
}

/**
 * iPXE settings a cmdline may name (the example data passes `${mac:hexhyp}` to the installer):
 * GRUB has no such settings, so the ones the request told us are filled in here.
 */
const IPXE_SETTINGS = /\$\{(?:net0\/)?(mac(?::hexhyp|:hexraw)?|uuid)\}/g;

type IpxeSetting = 'mac' | 'mac:hexhyp' | 'mac:hexraw' | 'uuid';

/** A text cut at the iPXE settings it names: literal text at even indexes, a setting (its name and its text as written) at odd ones. */
type SettingParts = (string | { name: IpxeSetting; whole: string })[];

function settingParts(text: string): SettingParts {
  const parts: SettingParts = [];
  let last = 0;
  for (const m of text.matchAll(IPXE_SETTINGS)) {
    parts.push(text.slice(last, m.index), { name: m[1] as IpxeSetting, whole: m[0] });
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function settingValue(name: IpxeSetting, whole: string, { mac, uuid }: GrubMachine): string {
  if (name === 'uuid') return uuid ?? whole;
  if (!mac) return whole;
  if (name === 'mac:hexhyp') return mac.replaceAll(':', '-');
  if (name === 'mac:hexraw') return mac.replaceAll(':', '');
  return mac;
}

function fillIpxeSettings(parts: SettingParts, machine: GrubMachine): string {
  let text = '';
  for (const part of parts) text += typeof part === 'string' ? part : settingValue(part.name, part.whole, machine);
  return text;
}

/**
 * A file a config names, as GRUB fetches it. Over TFTP, this appliance's /images/… is
 * served from --images-path under the same name, so it stays a path on GRUB's own server
 * (`$root`); anything else needs GRUB's http module (Debian's signed image has none).
 */
function grubPath(ref: string, baseUrl: string, transport: GrubTransport, problems: string[]): string {
  const url = resolveAssetUrl(ref, baseUrl);
  const base = baseUrl.replace(/\/+$/, '');
  if (transport === 'tftp' && url.startsWith(`${base}/images/`)) return decodePath(url.slice(base.length));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`${ref} is not a URL GRUB can fetch`);
    return url;
  }
  if (parsed.protocol !== 'http:') problems.push(`${url}: GRUB fetches only http:// and TFTP, not ${parsed.protocol.replace(/:$/, '')}`);
  else if (transport === 'tftp') problems.push(`${url} is not under ${base}/images/, so GRUB needs its http module to fetch it (Debian's signed GRUB has none)`);
  return `(http,${parsed.host})${decodePath(parsed.pathname)}${parsed.search}`;
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

function comment(text: string): string {
  return text.includes('\n') || text.includes('\r') ? `# ${text.replace(/[\r\n]+/g, ' ')}` : `# ${text}`;
}

/** A cmdline word as GRUB gets it: quoted once per config, or, when it names an iPXE setting, filled in and quoted per machine. */
type GrubArg = { quoted: string; settings: false } | { parts: SettingParts; settings: true };

/** What a config's GRUB rendering shares across machines: the files as GRUB fetches them, their lines, and the cmdline's words. */
interface GrubFiles {
  kernel: string;
  initrds: string[];
  problems: string[];
  /** One `echo` line per problem, the same in every render of the config. */
  problemLines: string[];
  linux: string;
  initrdLine: string | undefined;
  args: GrubArg[];
}

/** Per config object, as renderBoot's: a store's configs are immutable and replaced whole on reload. */
const filesCache = new WeakMap<BootConfig, { baseUrl: string; transport: GrubTransport; files: GrubFiles }>();

/**
 * The machine-independent part of renderGrubConfig, kept per config: URLs parsed, the cmdline
 * rendered and split into words (filling a setting in adds no space or quote, so splitting
 * before or after gives the same words), and every word without a setting quoted.
 */
function grubFiles(config: BootConfig, baseUrl: string, transport: GrubTransport): GrubFiles {
  const cached = filesCache.get(config);
  if (cached?.baseUrl === baseUrl && cached.transport === transport) return cached.files;
  const problems: string[] = [];
  const kernel = grubPath(config.kernel, baseUrl, transport, problems);
  const initrds = config.initrd.map((ref) => grubPath(ref, baseUrl, transport, problems));
  const args = cmdlineWords(renderCmdline(config.cmdline, baseUrl)).map((word): GrubArg => {
    const parts = settingParts(word);
    return parts.length > 1 ? { parts, settings: true } : { quoted: grubWord(word), settings: false };
  });
  const files: GrubFiles = {
    kernel,
    initrds,
    problems,
    problemLines: problems.map((p) => `echo ${grubWord(`bootcfg-appliance: warning: ${p}`)}`),
    linux: `linux ${grubWord(kernel)}`,
    initrdLine: initrds.length ? ['initrd', ...initrds.map(grubWord)].join(' ') : undefined,
    args,
  };
  filesCache.set(config, { baseUrl, transport, files });
  return files;
}

/** The per-machine config: the kernel, its initrds (one `initrd` line, GRUB loads them in order) and the rendered cmdline. */
export function renderGrubConfig(config: BootConfig, opts: { baseUrl: string; transport: GrubTransport; machine: GrubMachine; key: string }): RenderedGrub {
  const files = grubFiles(config, opts.baseUrl, opts.transport);
  const { machine } = opts;
  let linux = files.linux;
  for (const arg of files.args) linux += ` ${arg.settings ? grubWord(fillIpxeSettings(arg.parts, machine)) : arg.quoted}`;
  let text = `${comment(`bootcfg-appliance: ${opts.key} for${machine.mac ? ` mac=${machine.mac}` : ''}${machine.uuid ? ` uuid=${machine.uuid}` : ''}`)}\nset timeout=0\n`;
  for (const line of files.problemLines) text += `${line}\n`;
  text += `echo ${grubWord(`bootcfg-appliance: ${config.message ?? `booting ${opts.key}`}`)}\n${linux}\n`;
  if (files.initrdLine !== undefined) text += `${files.initrdLine}\n`;
  // Copies: the cached lists are shared by every render of this config.
  return { text: `${text}boot\n`, kernel: files.kernel, initrds: [...files.initrds], problems: [...files.problems] };
}

/**
 * What a machine without a usable config gets: the reason on its console, then back to the
 * firmware (its next boot option) instead of GRUB's prompt, where nobody would see why.
 */
export function renderGrubMiss(reason: string): string {
  return `${comment(`bootcfg-appliance: ${reason}`)}\necho ${grubWord(`bootcfg-appliance: ${reason}`)}\nsleep 10\nexit 1\n`;
}
