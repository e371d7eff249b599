/**
 * Rendering for the matchbox layout: a profile's `boot` as the appliance's BootConfig (so
 * ipxe-script.ts and grub-config.ts render it unchanged), `/metadata`'s env file, and the
 * functions every matchbox template may call. Pure: data in, text or config out.
 */
import { type BootConfig, BootConfigSchema } from '../store/boot-config.ts';
import { initrdName } from './ipxe-script.ts';
import { compareGoStrings, formatGoFloat, type GoTemplateFunction, type GoTemplateOptions, goTemplateProblem, hasGoTemplateActions, renderGoTemplate } from './go-template.ts';

/** JSON data as templates and /metadata see it (the group's metadata, selectors and request). */
export type TemplateJson = string | number | boolean | null | TemplateJson[] | { [key: string]: TemplateJson };

/**
 * Functions beside Go's builtins. matchbox adds none; `base_url` is the appliance's own
 * `{{base_url}}` (data/README.md) so a profile can name this appliance without hard-coding
 * its address. A matchbox file never calls it, so it changes nothing there.
 */
export function matchboxTemplateOptions(baseUrl: string): GoTemplateOptions {
  const functions: Record<string, GoTemplateFunction> = { base_url: () => baseUrl };
  return { functions };
}

/** Why a matchbox template does not parse, or undefined: the check the store runs on load (the base URL does not matter to parsing). */
export function matchboxTemplateProblem(name: string, text: string): string | undefined {
  return goTemplateProblem(name, text, matchboxTemplateOptions(''));
}

/** Renders one template with a machine's data; text without `{{` comes back exactly as written. */
export function renderMatchboxTemplate(name: string, text: string, data: { [key: string]: TemplateJson }, baseUrl: string): string {
  if (!hasGoTemplateActions(text)) return text;
  return renderGoTemplate(name, text, data, matchboxTemplateOptions(baseUrl));
}

// ---------------------------------------------------------------------------------------
// /metadata

/** strings.ToUpper maps each code point on its own (simple case mapping): `ß` stays `ß`, where JavaScript would write `SS`. */
function goToUpper(s: string): string {
  let out = '';
  for (const ch of s) {
    const up = ch.toUpperCase();
    out += [...up].length === 1 ? up : ch;
  }
  return out;
}

/**
 * The env file matchbox's /metadata answers (matchbox/http/metadata.go renderAsEnvFile): one
 * `KEY=value` line per string, number or boolean, the key upper-cased with the path to it
 * joined by `_` (`{"etcd":{"name":"n1"}}` → `ETCD_NAME=n1`); values printed as Go's `%v`
 * prints them (so 1000000 is `1e+06`); arrays and nulls are left out. matchbox walks Go
 * maps, so its line order is random; here keys are sorted (bytewise) at each level so the
 * answer is stable.
 */
export function renderMetadataEnv(data: { readonly [key: string]: TemplateJson }): string {
  const lines: string[] = [];
  const walk = (prefix: string, node: { readonly [key: string]: TemplateJson }) => {
    for (const key of Object.keys(node).sort(compareGoStrings)) {
      const name = prefix + key;
      const value = node[key]!;
      if (typeof value === 'string' || typeof value === 'boolean') lines.push(`${goToUpper(name)}=${value}`);
      else if (typeof value === 'number') lines.push(`${goToUpper(name)}=${formatGoFloat(value)}`);
      else if (value !== null && !Array.isArray(value)) walk(`${name}_`, value);
    }
  };
  walk('', data);
  return lines.map((l) => `${l}\n`).join('');
}

// ---------------------------------------------------------------------------------------
// A profile's boot section as a BootConfig

/** A matchbox profile's `boot` (storagepb.NetBoot). */
export interface ProfileBoot {
  kernel: string;
  initrd: readonly string[];
  args: readonly string[];
}

/** A profile whose boot section cannot become a boot config (no kernel, an initrd option iPXE's `initrd` line would need and the config cannot carry, a bad value). */
export class ProfileBootError extends Error {
  constructor(
    readonly profile: string,
    readonly reason: string,
  ) {
    super(`${profile}: ${reason}`);
    this.name = 'ProfileBootError';
  }
}

/** `--name main /assets/x.img` (matchbox passes an initrd entry to iPXE's `initrd` as is): the URL and the name it gives the image. */
function parseInitrdEntry(profile: string, entry: string, index: number): { url: string; name: string | undefined } {
  const words = entry.trim().split(/\s+/).filter(Boolean);
  let name: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--name' || w === '-n') {
      name = words[++i];
      if (name === undefined) throw new ProfileBootError(profile, `boot.initrd[${index}]: ${w} without a name`);
    } else if (w.startsWith('--name=')) name = w.slice('--name='.length);
    else if (w.startsWith('-')) throw new ProfileBootError(profile, `boot.initrd[${index}]: iPXE option ${w} is not supported (only --name)`);
    else rest.push(w);
  }
  if (rest.length !== 1) throw new ProfileBootError(profile, `boot.initrd[${index}]: expected one URL, got ${rest.length ? rest.join(' ') : 'none'}`);
  return { url: rest[0]!, name };
}

/** The name iPXE gives an image fetched without `--name`: the last segment of its URL's path. */
function ipxeImageName(url: string): string {
  const p = url.replace(/[?#].*$/, '');
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * A profile's boot section, rendered with the machine's template data, as a BootConfig:
 * kernel, each initrd and each arg are templates (an appliance addition: matchbox passes
 * them through untemplated, and `${…}` iPXE settings in them pass through here too); args
 * become the cmdline, joined by spaces, as matchbox's iPXE and GRUB templates write them.
 * The iPXE renderer names initrds itself (`initrd0`, …), so an arg `initrd=<name>` that
 * points at one (by its `--name`, or by the file name iPXE would have used) is pointed at
 * the renderer's name for the same image, and the EFI stub still finds it.
 */
export function renderProfileBoot(profile: string, boot: ProfileBoot, data: { [key: string]: TemplateJson }, baseUrl: string): BootConfig {
  const render = (field: string, text: string) => renderMatchboxTemplate(`${profile} ${field}`, text, data, baseUrl);
  const kernel = render('boot.kernel', boot.kernel).trim();
  if (!kernel) throw new ProfileBootError(profile, 'boot.kernel is empty: the profile does not say what to boot');
  const initrds = boot.initrd.map((entry, i) => parseInitrdEntry(profile, render(`boot.initrd[${i}]`, entry), i));
  const rename = new Map<string, string>();
  initrds.forEach(({ url, name }, i) => {
    const key = name ?? ipxeImageName(url);
    if (key && !rename.has(key)) rename.set(key, initrdName(i));
  });
  const cmdline = boot.args
    .map((arg, i) => render(`boot.args[${i}]`, arg))
    .join(' ')
    .replace(/(^|\s)initrd=(\S+)/g, (whole, lead: string, name: string) => (rename.has(name) ? `${lead}initrd=${rename.get(name)}` : whole));
  const parsed = BootConfigSchema.safeParse({ kernel, initrd: initrds.map((i) => i.url), cmdline });
  if (!parsed.success) throw new ProfileBootError(profile, parsed.error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; '));
  return parsed.data;
}
