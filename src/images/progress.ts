import cliProgress from 'cli-progress';
import type { DownloadProgress } from './download.ts';

/** One file `images fetch` put in place (or found already there), as its JSON line says it. */
export interface FetchedFile {
  file: string;
  bytes: number;
  sha256: string;
  url?: string;
  /** How it was verified: the checksum's algorithm, and the key id the signature was made by. */
  checksum?: string;
  signedBy?: string;
  /** Bytes an earlier, cut run had left that this one continued from with a Range request. */
  resumedFrom?: number;
  /** Already there with the right checksum: not downloaded again. */
  present?: boolean;
}

/**
 * How `images fetch` shows what it does: on a terminal a bar per download with rate and ETA
 * (cli-progress) and a line per file; otherwise one JSON line per file on stdout (and its
 * steps as JSON lines on stderr), for scripts and logs.
 */
export interface Reporter {
  download(name: string): DownloadProgress & { finish(): void };
  fetched(file: FetchedFile): void;
  note(line: Record<string, unknown>): void;
}

export interface ReporterIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The terminal to draw bars on; absent when stderr is not a TTY. */
  tty?: NodeJS.WritableStream | undefined;
}

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

export function jsonReporter(io: ReporterIo): Reporter {
  return {
    download: () => ({ start() {}, advance() {}, finish() {} }),
    fetched: (file) => io.stdout(`${JSON.stringify(file)}\n`),
    note: (line) => io.stderr(`${JSON.stringify(line)}\n`),
  };
}

export function ttyReporter(io: ReporterIo & { tty: NodeJS.WritableStream }): Reporter {
  return {
    download(name) {
      const bar = new cliProgress.SingleBar({
        stream: io.tty,
        format: `${name} [{bar}] {percentage}% {done} of {size} | {rate} | ETA {eta_formatted}`,
        barsize: 30,
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
      });
      let value = 0;
      let startedAt = 0;
      let resumed = 0;
      const payload = () => {
        const seconds = (Date.now() - startedAt) / 1000;
        return { done: mib(value), rate: seconds > 0 ? `${mib((value - resumed) / seconds)}/s` : '–' };
      };
      return {
        start(total, resumedFrom) {
          startedAt = Date.now();
          resumed = value = resumedFrom;
          bar.start(total ?? 0, value, { size: total === undefined ? '?' : mib(total), ...payload() });
        },
        advance(bytes) {
          value += bytes;
          bar.update(value, payload());
        },
        finish: () => bar.stop(),
      };
    },
    fetched(file) {
      const how = file.present
        ? 'already there'
        : [file.checksum && `${file.checksum} ok`, file.signedBy && `signed by ${file.signedBy}`, file.resumedFrom ? `resumed at ${mib(file.resumedFrom)}` : ''].filter(Boolean).join(', ');
      io.stderr(`✓ ${file.file} (${mib(file.bytes)}${how ? `, ${how}` : ''})\n`);
    },
    note(line) {
      const text = Object.entries(line)
        .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(', ');
      io.stderr(`${text}\n`);
    },
  };
}

export function reporterFor(io: ReporterIo): Reporter {
  return io.tty ? ttyReporter({ ...io, tty: io.tty }) : jsonReporter(io);
}
