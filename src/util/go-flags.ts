/**
 * bootcfg (a Go program) took its flags Go-style, with one dash: `-address=0.0.0.0:8080`,
 * `-data-path /var/lib/bootcfg`; its users' unit files and scripts still say so. Go's flag
 * package treats `-name` and `--name` alike, so each single-dash word with a long name becomes
 * its double-dash form before parsing. Short flags (`-h`, `-V`) and values are left alone.
 */
export function goStyleFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    // After "--" everything is an operand, as for parseArgs.
    if (arg === '--') {
      out.push(...args.slice(out.length));
      break;
    }
    out.push(/^-[a-z][a-z0-9-]+(=|$)/i.test(arg) ? `-${arg}` : arg);
  }
  return out;
}
