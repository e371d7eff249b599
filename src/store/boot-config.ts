import { z } from 'zod';

/**
 * A boot config: what one machine (or every machine, for `default`) boots.
 * `cmdline` is either the literal kernel command line or an object whose keys render
 * sorted as `k=v`; `true` (or an empty string, as the original bootcfg examples wrote
 * flags) renders the bare key.
 */
// Everything below ends up on one line of an iPXE script: a line break would end the
// command early (or start another), a space would split a URL into two arguments.
const CONTROL = /[\u0000-\u001f\u007f]/;
const oneLine = (what: string) => z.string().refine((v) => !CONTROL.test(v), `${what} must not contain line breaks or control characters`);
const url = (what: string) =>
  oneLine(what)
    .transform((v) => v.trim())
    .refine((v) => v !== '', `${what} is empty`)
    .refine((v) => !/\s/.test(v), `${what} must not contain spaces (encode them as %20)`);

const CmdlineText = oneLine('cmdline');
const CmdlineObject = z
  .record(z.string(), z.union([oneLine('a cmdline value'), z.literal(true)], { error: 'a cmdline value must be a string or true' }))
  .superRefine((record, ctx) => {
    for (const key of Object.keys(record)) {
      if (key === '' || /[\s=]/.test(key) || CONTROL.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: `cmdline key "${key}" must be non-empty, without spaces or =` });
    }
  });

export const BootConfigSchema = z
  .object({
    kernel: url('kernel'),
    initrd: z.array(url('an initrd entry')).default([]),
    cmdline: z.unknown().optional().transform((value, ctx): string | Record<string, string | true> => {
      if (value === undefined) return '';
      // Chosen by type so a bad entry is reported as itself, not as "matches neither form".
      const parsed =
        typeof value === 'string'
          ? CmdlineText.safeParse(value)
          : value !== null && typeof value === 'object' && !Array.isArray(value)
            ? CmdlineObject.safeParse(value)
            : undefined;
      if (parsed?.success) return parsed.data;
      for (const issue of parsed?.error.issues ?? [{ path: [], message: 'cmdline must be a string or an object of string or true values' }]) {
        ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
      }
      return z.NEVER;
    }),
    /** Shown by Pixiecore while it boots the machine. */
    message: z.string().optional(),
  })
  .strict();

export type BootConfig = z.output<typeof BootConfigSchema>;
export type Cmdline = BootConfig['cmdline'];

/** Replaced in kernel, initrd and cmdline values by --base-url, so data files need not hard-code the appliance's address. */
export const BASE_URL_PLACEHOLDER = '{{base_url}}';

/** Parses a boot config file's text; throws an Error whose message names the field at fault. */
export function parseBootConfig(text: string): BootConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  const parsed = BootConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      parsed.error.issues
        .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
        .join('; '),
    );
  }
  return parsed.data;
}

function substitute(value: string, baseUrl: string): string {
  return value.replaceAll(BASE_URL_PLACEHOLDER, baseUrl);
}

/**
 * Kernel and initrd paths without a scheme live on this appliance: `/images/x` and
 * `images/x` both become `<base-url>/images/x` (base-url may carry a path prefix, so
 * this is concatenation, not URL resolution against the host root).
 */
export function resolveAssetUrl(ref: string, baseUrl: string): string {
  const value = substitute(ref, baseUrl);
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return value;
  return `${baseUrl.replace(/\/+$/, '')}/${value.replace(/^\/+/, '')}`;
}

/** The kernel command line as text: sorted `k=v` for the object form, flags bare. */
export function renderCmdline(cmdline: Cmdline, baseUrl: string): string {
  if (typeof cmdline === 'string') return substitute(cmdline, baseUrl).trim();
  return Object.keys(cmdline)
    .sort()
    .map((key) => {
      const value = cmdline[key]!;
      return value === true || value === '' ? key : `${key}=${substitute(value, baseUrl)}`;
    })
    .join(' ');
}

/** Whether the command line already names its initrd (then the UEFI `initrd=` arguments are left to the author). */
function namesInitrd(cmdline: Cmdline): boolean {
  if (typeof cmdline === 'string') return /(^|\s)initrd=/.test(cmdline);
  return Object.hasOwn(cmdline, 'initrd');
}

/** Names iPXE gives the initrds (`initrd --name`), so the kernel line can point the EFI stub at them. */
export function initrdName(index: number): string {
  return `initrd${index}`;
}

/**
 * The iPXE script for one boot config. The EFI stub only finds initrds named on the
 * kernel line (`initrd=<name>`, shared/notes/wire.md); BIOS kernels ignore the argument,
 * so it is always added rather than guessing the platform.
 */
export function renderIpxeScript(config: BootConfig, baseUrl: string): string {
  return renderBoot(config, baseUrl).script;
}

/** The iPXE script and the absolute URLs it names (the timeline checks downloads against them). */
export interface RenderedBoot {
  script: string;
  kernelUrl: string;
  initrdUrls: string[];
}

/** Configs are immutable once loaded (a reload makes new objects), so each is rendered once per base URL. */
export function renderBoot(config: BootConfig, baseUrl: string): RenderedBoot {
  const cached = renderCache.get(config);
  if (cached?.baseUrl === baseUrl) return cached.rendered;
  const rendered: RenderedBoot = {
    script: buildIpxeScript(config, baseUrl),
    kernelUrl: resolveAssetUrl(config.kernel, baseUrl),
    initrdUrls: config.initrd.map((ref) => resolveAssetUrl(ref, baseUrl)),
  };
  renderCache.set(config, { baseUrl, rendered });
  return rendered;
}

const renderCache = new WeakMap<BootConfig, { baseUrl: string; rendered: RenderedBoot }>();

function buildIpxeScript(config: BootConfig, baseUrl: string): string {
  const args = renderCmdline(config.cmdline, baseUrl);
  const initrds = config.initrd.map((ref) => resolveAssetUrl(ref, baseUrl));
  const initrdArgs = namesInitrd(config.cmdline) ? [] : initrds.map((_, i) => `initrd=${initrdName(i)}`);
  const kernelLine = ['kernel', resolveAssetUrl(config.kernel, baseUrl), ...initrdArgs, args].filter(Boolean).join(' ');
  const lines = ['#!ipxe', kernelLine, ...initrds.map((url, i) => `initrd --name ${initrdName(i)} ${url}`), 'boot'];
  return `${lines.join('\n')}\n`;
}

/** The Pixiecore API response (danderson/netboot README.api.md): flags are `true` in the object form. */
export interface PixiecoreBoot {
  kernel: string;
  initrd: string[];
  cmdline?: string | Record<string, string | true>;
  message?: string;
}

export function renderPixiecore(config: BootConfig, baseUrl: string): PixiecoreBoot {
  const out: PixiecoreBoot = {
    kernel: resolveAssetUrl(config.kernel, baseUrl),
    initrd: config.initrd.map((ref) => resolveAssetUrl(ref, baseUrl)),
  };
  const { cmdline } = config;
  if (typeof cmdline === 'string') {
    const text = substitute(cmdline, baseUrl).trim();
    if (text) out.cmdline = text;
  } else if (Object.keys(cmdline).length) {
    const obj: Record<string, string | true> = {};
    for (const key of Object.keys(cmdline).sort()) {
      const value = cmdline[key]!;
      obj[key] = value === true || value === '' ? true : substitute(value, baseUrl);
    }
    out.cmdline = obj;
  }
  if (config.message !== undefined) out.message = config.message;
  return out;
}
