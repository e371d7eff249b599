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
const CmdlineObject = z.record(z.string(), z.union([oneLine('a cmdline value'), z.literal(true)], { error: 'a cmdline value must be a string or true' })).superRefine((record, ctx) => {
  for (const key of Object.keys(record)) {
    if (key === '' || /[\s=]/.test(key) || CONTROL.test(key)) ctx.addIssue({ code: 'custom', path: [key], message: `cmdline key "${key}" must be non-empty, without spaces or =` });
  }
});

/** The loaders a boot config may name (boot/machine.ts Loader; the wiring checks they agree). */
export const LOADERS = ['ipxe', 'grub'] as const;

export const BootConfigSchema = z
  .object({
    kernel: url('kernel'),
    initrd: z.array(url('an initrd entry')).default([]),
    cmdline: z
      .unknown()
      .optional()
      .transform((value, ctx): string | Record<string, string | true> => {
        if (value === undefined) return '';
        // Chosen by type so a bad entry is reported as itself, not as "matches neither form".
        const parsed = typeof value === 'string' ? CmdlineText.safeParse(value) : value !== null && typeof value === 'object' && !Array.isArray(value) ? CmdlineObject.safeParse(value) : undefined;
        if (parsed?.success) return parsed.data;
        for (const issue of parsed?.error.issues ?? [{ path: [], message: 'cmdline must be a string or an object of string or true values' }]) {
          ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
        }
        return z.NEVER;
      }),
    /**
     * Which boot loader a UEFI PXE machine is handed: `ipxe` (iPXE, unsigned) or `grub`
     * (the signed shim → GRUB chain, which Secure Boot accepts). Absent: --uefi-loader decides.
     */
    loader: z.enum(LOADERS, { error: (issue) => `must be one of ${LOADERS.map((l) => `"${l}"`).join(', ')} (got ${JSON.stringify(issue.input)})` }).optional(),
    /** Shown by Pixiecore while it boots the machine. */
    message: z.string().optional(),
  })
  .strict();

export type BootConfig = z.output<typeof BootConfigSchema>;
export type Cmdline = BootConfig['cmdline'];

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
    throw new Error(parsed.error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; '));
  }
  return parsed.data;
}
