import { z } from 'zod';

/** HOST:PORT as given to --address and --tftp-address. */
export interface HostPort {
  host: string;
  port: number;
}

const port = z.coerce.number().int().min(0).max(65535);

/** `HOST:PORT`, `[v6]:PORT`, `:PORT` or a bare port; an empty host is `defaultHost`. Throws with a one-line reason. */
export function parseHostPort(value: string, defaultHost = '0.0.0.0'): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  if (m) {
    const host = m[1] ?? m[2] ?? '';
    return { host: host === '' ? defaultHost : host, port: port.parse(m[3]) };
  }
  if (/^\d+$/.test(value.trim())) return { host: defaultHost, port: port.parse(value) };
  throw new Error(`expected HOST:PORT, got "${value}"`);
}
