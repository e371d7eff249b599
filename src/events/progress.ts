import type { BootEvent, BootEventOf, BootStep } from './boot-event.ts';

/**
 * Where a machine's boot stands, judged from its timeline alone (pure: the machines page,
 * /api and the boots-completed counter all use these rules, so they never disagree).
 * Optional detail fields only make a verdict more specific when present, never wrong when absent.
 */
export type BootState = 'booting' | 'stalled' | 'failed' | 'ignored' | 'booted';

export interface ProgressRules {
  /** How long a step may go without the next one before the boot counts as stalled. */
  stallAfterMs: number;
}

export const DEFAULT_RULES: ProgressRules = { stallAfterMs: 60_000 };

export interface BootProgress {
  state: BootState;
  lastStep: BootStep | undefined;
  lastAt: number | undefined;
  /** One sentence for the operator: what happened last and, when stuck, what never came. */
  reason: string;
  /** The steps that would move the boot on (empty when nothing is expected). */
  expected: BootStep[];
  /** Files the last boot script named that were not fetched yet (paths). */
  missingFiles: string[];
}

/** The files a boot script names, as request paths, so `/images/x` and `http://host:8080/images/x` match. */
export function filePath(urlOrPath: string): string {
  // The common cases without the URL parser: /api/machines judges every event of every machine.
  const m = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?(\/[^?#]*)?/i.exec(urlOrPath);
  const path = m?.[1] ?? (m?.[0] ? '/' : `/${urlOrPath.replace(/[?#].*$/, '')}`);
  if (!path.includes('%') && !path.includes('/.')) return path;
  try {
    return decodeURIComponent(new URL(urlOrPath, 'http://appliance.invalid/').pathname);
  } catch {
    return path;
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function httpStatus(e: BootEvent): number | undefined {
  return 'status' in e.detail ? e.detail.status : undefined;
}

/** An HTTP step that did not serve what was asked: an error status, or a lookup that found no config. */
function failedHttp(e: BootEvent): boolean {
  const s = httpStatus(e);
  return (s !== undefined && s >= 400) || ('found' in e.detail && e.detail.found === false);
}

type ScriptEvent = BootEventOf<'http.ipxe'> | BootEventOf<'http.pixiecore'> | BootEventOf<'grub.config'>;

/** A step that names the kernel and initrds the boot goes on to fetch: an iPXE script, a Pixiecore answer, a GRUB config. */
function isScript(e: BootEvent): e is ScriptEvent {
  return e.step === 'http.ipxe' || e.step === 'http.pixiecore' || e.step === 'grub.config';
}

/** A download that crosses a file off: over HTTP, or over TFTP (GRUB fetches kernels and initrds there). */
function downloadedPath(e: BootEvent): string | undefined {
  if (e.step === 'http.image') return failedHttp(e) ? undefined : nonEmpty(e.detail.path);
  if (e.step === 'tftp.end') return e.detail.outcome === 'ok' ? nonEmpty(e.detail.file) : undefined;
  return undefined;
}

/**
 * filePath of the URLs scripts name: a rack's scripts name the same few kernels and initrds,
 * and the boot counter asks for every script served. Cleared, not evicted, past its bound.
 */
const scriptPaths = new Map<string, string>();

function scriptPath(url: string): string {
  let path = scriptPaths.get(url);
  if (path === undefined) {
    if (scriptPaths.size >= 4096) scriptPaths.clear();
    path = filePath(url);
    scriptPaths.set(url, path);
  }
  return path;
}

/** The files a served boot script (or Pixiecore answer) names; undefined when the event does not say. */
export function scriptFiles(e: BootEvent): string[] | undefined {
  if (!isScript(e)) return undefined;
  const kernel = nonEmpty(e.detail.kernel);
  if (!kernel) return undefined;
  const files = [scriptPath(kernel)];
  for (const initrd of e.detail.initrds ?? []) files.push(scriptPath(initrd));
  return files;
}

/**
 * Tracks one machine's boot towards completion: a served script opens a set of files it
 * names; each image download crosses one off; the boot completes when none is left.
 * A newer script replaces the open set (the machine rebooted or re-chained).
 */
export interface CompletionState {
  pending: Set<string> | undefined;
}

export function newCompletionState(): CompletionState {
  return { pending: undefined };
}

/** Feeds one event; returns true exactly once per script whose files were all fetched. */
export function advanceCompletion(state: CompletionState, e: BootEvent): boolean {
  if (isScript(e) && !failedHttp(e)) {
    const files = scriptFiles(e);
    state.pending = files?.length ? new Set(files) : undefined;
    return false;
  }
  if (state.pending) {
    const raw = downloadedPath(e);
    if (!raw) return false;
    const path = filePath(raw);
    // --base-url may carry a prefix a reverse proxy strips: /prefix/images/x arrives as /images/x.
    for (const p of state.pending) if (p === path || p.endsWith(path)) state.pending.delete(p);
    if (state.pending.size === 0) {
      state.pending = undefined;
      return true;
    }
  }
  return false;
}

/** Index of every event at which a boot completed. */
export function completedBoots(events: readonly BootEvent[]): number[] {
  const state = newCompletionState();
  const out: number[] = [];
  events.forEach((e, i) => {
    if (advanceCompletion(state, e)) out.push(i);
  });
  return out;
}

const HTTP_STEPS: BootStep[] = ['http.boot-script', 'http.ipxe', 'http.pixiecore', 'http.image'];

interface Expectation {
  expected: BootStep[];
  /** Says what never came, once the stall timer ran out. */
  stalled: string;
}

function isHttpUrl(s: string | undefined): boolean {
  return s !== undefined && /^https?:\/\//i.test(s);
}

/** What should follow `last`, given what it said. */
function expectationAfter(last: BootEvent, pending: Set<string> | undefined): Expectation | undefined {
  const bootFile = 'file' in last.detail ? nonEmpty(last.detail.file) : undefined;
  switch (last.step) {
    case 'dhcp.request':
      return { expected: ['dhcp.reply', 'dhcp.ignored', 'pxe.request', 'tftp.start', ...HTTP_STEPS], stalled: 'DHCP request seen, but no reply, TFTP or HTTP request followed' };
    case 'dhcp.reply':
      if (isHttpUrl(bootFile)) return { expected: HTTP_STEPS, stalled: `DHCP answered with ${bootFile}, but the machine never fetched it over HTTP` };
      return {
        expected: ['dhcp.request', 'pxe.request', 'tftp.start', ...HTTP_STEPS],
        stalled: `DHCP answered${bootFile ? ` with ${bootFile}` : ''}, but no TFTP or HTTP request followed (UEFI in ProxyDHCP mode also never came to port 4011)`,
      };
    case 'pxe.request':
      return { expected: ['pxe.reply', 'tftp.start'], stalled: 'PXE request on port 4011 seen, but never answered' };
    case 'pxe.reply':
      return { expected: ['tftp.start', 'dhcp.request', ...HTTP_STEPS], stalled: `port 4011 answered${bootFile ? ` with ${bootFile}` : ''}, but the firmware never fetched it over TFTP` };
    case 'tftp.start':
      return { expected: ['tftp.end'], stalled: `TFTP transfer${bootFile ? ` of ${bootFile}` : ''} started and never finished` };
    case 'tftp.end':
      if (pending?.size) return { expected: ['tftp.start', 'http.image'], stalled: `its GRUB config was served, but ${[...pending].join(', ')} ${pending.size === 1 ? 'was' : 'were'} never fetched` };
      if (last.detail.outcome === 'not-found') {
        return { expected: ['tftp.start', 'dhcp.request', ...HTTP_STEPS], stalled: `TFTP had no ${bootFile ?? 'file'} for it, and nothing followed` };
      }
      return { expected: ['tftp.start', 'dhcp.request', 'grub.config', ...HTTP_STEPS], stalled: afterLoader(bootFile) };
    case 'grub.config':
      if (!scriptFiles(last)) return { expected: ['tftp.start', 'http.image'], stalled: 'its GRUB config was served, but no kernel was fetched from here' };
      if (!pending || pending.size === 0) return undefined;
      return { expected: ['tftp.start', 'http.image'], stalled: `its GRUB config was served, but ${[...pending].join(', ')} ${pending.size === 1 ? 'was' : 'were'} never fetched` };
    case 'http.boot-script':
      return { expected: ['http.ipxe', 'http.pixiecore', 'http.image'], stalled: '/boot.ipxe was served, but iPXE never chained to /ipxe' };
    case 'http.image':
      // UEFI HTTP Boot fetched a boot loader (/firmware/ipxe.efi) and went quiet: as after TFTP.
      if (!pending?.size && /^\/firmware\/[^/]+$/.test(filePath(last.detail.path)))
        return { expected: ['dhcp.request', ...HTTP_STEPS], stalled: afterLoader(filePath(last.detail.path).slice('/firmware/'.length)) };
      if (!pending || pending.size === 0) return undefined;
      return { expected: ['http.image'], stalled: `the boot script was served, but ${[...pending].join(', ')} ${pending.size === 1 ? 'was' : 'were'} never fetched` };
    case 'http.ipxe':
    case 'http.pixiecore':
      if (!scriptFiles(last)) return { expected: ['http.image'], stalled: 'the boot script was served, but no kernel was fetched from here' };
      if (!pending || pending.size === 0) return undefined;
      return { expected: ['http.image'], stalled: `the boot script was served, but ${[...pending].join(', ')} ${pending.size === 1 ? 'was' : 'were'} never fetched` };
    default:
      return undefined;
  }
}

/**
 * What never came after a boot loader went out over TFTP, by loader. Firmware with Secure Boot
 * refuses unsigned iPXE without a word on the wire (wire.md: "Access Denied" on its console
 * only), so that is the first thing to suspect when a UEFI machine goes quiet after ipxe.efi.
 */
function afterLoader(file: string | undefined): string {
  if (file && /^(ipxe|snponly)(-[a-z0-9]+)?\.efi$/.test(file)) {
    return `${file} was sent, but the firmware never came back after the NBP (no DHCP request from iPXE, no HTTP): with Secure Boot on, the firmware refuses the unsigned ${file} (Access Denied); give this machine "loader": "grub" (the signed shim → GRUB chain)`;
  }
  if (file && /^shim[a-z0-9]*\.efi$/.test(file)) return `${file} was sent, but shim never fetched GRUB from here`;
  if (file && /^grub[a-z0-9]*\.efi$/.test(file)) {
    return `${file} was sent, but GRUB never asked for its config here (beside a site DHCP server, signed GRUB asks the next-server of the site's DHCP ACK)`;
  }
  return `${file ?? 'the firmware'} was sent over TFTP, but the machine never came back (no DHCP request from iPXE, no HTTP)`;
}

function tftpFailed(e: BootEventOf<'tftp.end'>): boolean {
  const outcome = nonEmpty(e.detail.outcome);
  // Firmware probes the size first and aborts on purpose, and iPXE and GRUB ask for optional
  // files (autoexec.ipxe, grub.cfg-<mac>) expecting a miss (wire.md): neither is a failure.
  return outcome !== undefined && outcome !== 'ok' && outcome !== 'not-found' && !/abort/i.test(outcome);
}

/**
 * Judges the latest boot attempt. `now` is injected so the rules are tested without clocks;
 * a machine whose last step is older than `stallAfterMs` and still expects a next step is stalled.
 */
export function assessBoot(events: readonly BootEvent[], now: number, rules: ProgressRules = DEFAULT_RULES): BootProgress {
  const last = events.at(-1);
  if (!last) return { state: 'booting', lastStep: undefined, lastAt: undefined, reason: 'no steps recorded', expected: [], missingFiles: [] };
  // A served script resets what the boot waits for, so only events from the last one on can
  // decide completion: scanning from there gives the same verdict without walking the whole
  // history (the API judges every machine on every request).
  let from = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (isScript(e) && !failedHttp(e)) {
      from = i;
      break;
    }
  }
  const state = newCompletionState();
  let completedAt = -1;
  for (let i = from; i < events.length; i++) if (advanceCompletion(state, events[i]!)) completedAt = i;
  const base = { lastStep: last.step, lastAt: last.at, missingFiles: state.pending ? [...state.pending] : [] };
  const status = httpStatus(last);

  if (last.step === 'dhcp.ignored') {
    const reason = nonEmpty(last.detail.reason);
    return { ...base, state: 'ignored', reason: `DHCP request not answered${reason ? `: ${reason}` : ''}`, expected: [] };
  }
  if (status !== undefined && status >= 400 && 'status' in last.detail) {
    const what = nonEmpty(last.detail.path) ?? last.step;
    const why = nonEmpty(last.detail.reason);
    return { ...base, state: 'failed', reason: `${what} answered ${status}${why ? `: ${why}` : ''}`, expected: [] };
  }
  if ('found' in last.detail && last.detail.found === false) {
    const what = last.step === 'http.cloud' ? 'cloud' : 'boot';
    return { ...base, state: 'failed', reason: `no ${what} config matched this machine (\`bootcfg-appliance explain --mac\` shows which lookups missed)`, expected: [] };
  }
  if (last.step === 'tftp.end' && tftpFailed(last)) {
    const file = nonEmpty(last.detail.file);
    return { ...base, state: 'failed', reason: `TFTP transfer${file ? ` of ${file}` : ''} failed: ${last.detail.outcome}`, expected: [] };
  }
  // A boot that fetched all its files is done; later HTTP steps (cloud config) keep it done.
  const sinceCompletion = completedAt >= 0 ? events.slice(completedAt + 1) : undefined;
  if (sinceCompletion?.every((e) => e.step === 'http.cloud' || e.step === 'http.image')) {
    return { ...base, state: 'booted', reason: 'fetched its boot script, kernel and every initrd', expected: [] };
  }
  if (last.step === 'http.cloud') {
    return { ...base, state: 'booted', reason: 'the booted system fetched its cloud config', expected: [] };
  }
  const expectation = expectationAfter(last, state.pending);
  if (!expectation) return { ...base, state: 'booting', reason: `last step ${last.step}`, expected: [] };
  const idle = now - last.at;
  if (idle > rules.stallAfterMs) {
    return { ...base, state: 'stalled', reason: `${expectation.stalled} within ${Math.round(rules.stallAfterMs / 1000)} s (idle ${Math.round(idle / 1000)} s)`, expected: expectation.expected };
  }
  return { ...base, state: 'booting', reason: `last step ${last.step}; waiting for ${expectation.expected[0]}`, expected: expectation.expected };
}
