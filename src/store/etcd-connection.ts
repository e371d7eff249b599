/**
 * Where the etcd store is and how to reach it: the --store URL
 * (`etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`) parsed and checked at the edge, and the etcd3
 * client built from it, over TLS when --store-ca (and optionally a client certificate) is given.
 */
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { z } from 'zod';

/** Every key the appliance writes lives under this prefix unless the URL names another. */
export const DEFAULT_STORE_PREFIX = '/bootcfg';

export interface StoreUrl {
  /** `host:port`, as given, in order. */
  endpoints: string[];
  /** Starts with `/`, no trailing `/` (e.g. `/bootcfg`, `/site-a/boot`). */
  prefix: string;
}

const HOST_PORT = /^(?<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(?<port>\d{1,5})$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;

const endpointSchema = z.string().superRefine((s, ctx) => {
  const m = HOST_PORT.exec(s);
  if (!m) ctx.addIssue({ code: 'custom', message: `"${s}" is not HOST:PORT` });
  else if (Number(m.groups!.port) < 1 || Number(m.groups!.port) > 65535) ctx.addIssue({ code: 'custom', message: `"${s}": port must be 1..65535` });
});

const storeUrlSchema = z
  .string()
  .trim()
  .refine((s) => s.startsWith('etcd://'), { message: 'must start with etcd:// (etcd://HOST:PORT[,HOST:PORT…][/PREFIX])' })
  .transform((s) => {
    const rest = s.slice('etcd://'.length);
    const slash = rest.indexOf('/');
    const hosts = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash);
    return { endpoints: hosts === '' ? [] : hosts.split(','), prefix: prefix.replace(/\/+$/, '') };
  })
  .pipe(
    z.object({
      endpoints: z.array(endpointSchema).min(1, 'names no HOST:PORT (etcd://HOST:PORT[,HOST:PORT…][/PREFIX])'),
      prefix: z.string().refine(
        (p) =>
          p === '' ||
          p
            .slice(1)
            .split('/')
            .every((seg) => PREFIX_SEGMENT.test(seg)),
        {
          message: 'the prefix is /-separated names of letters, digits, ".", "_" and "-" (e.g. /bootcfg)',
        },
      ),
    }),
  );

export class StoreUrlError extends Error {}

/** Parses --store; throws StoreUrlError with a one-line reason that quotes the bad part. */
export function parseStoreUrl(url: string): StoreUrl {
  const parsed = storeUrlSchema.safeParse(url);
  if (!parsed.success) throw new StoreUrlError(`"${url}": ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return { endpoints: parsed.data.endpoints, prefix: parsed.data.prefix || DEFAULT_STORE_PREFIX };
}

export interface EtcdConnectionOptions {
  endpoints: string[];
  prefix: string;
  /** PEM files: the CA that signed the members' certificates, and this client's certificate and key. */
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** How long one dial may take before the client tries the next member. */
  dialTimeoutMs?: number | undefined;
}

/**
 * gRPC's reconnect backoff grows to 2 minutes by default: after an outage the appliance would
 * wait that long to notice etcd is back. Keepalive pings find a link cut without a reset (the
 * watch stream would otherwise hang until TCP gives up); 10 s stays above etcd's
 * --grpc-keepalive-min-time (5 s), below which etcd closes the connection for pinging too often.
 */
const GRPC_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5000,
};

function readPem(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new StoreUrlError(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * A client for every endpoint (it fails over between them by itself). With `ca` the endpoints
 * are dialled over TLS; a client certificate needs its key and the CA.
 */
export function connectEtcd(opts: EtcdConnectionOptions): Etcd3 {
  if ((opts.cert === undefined) !== (opts.key === undefined)) throw new StoreUrlError('--store-cert and --store-key go together');
  if (opts.cert !== undefined && opts.ca === undefined) throw new StoreUrlError('--store-cert needs --store-ca (the CA that signed the etcd members)');
  const tls = opts.ca !== undefined;
  const hosts = opts.endpoints.map((e) => `${tls ? 'https' : 'http'}://${e}`);
  const credentials = tls
    ? {
        rootCertificate: readPem('--store-ca', opts.ca!),
        ...(opts.cert !== undefined ? { certChain: readPem('--store-cert', opts.cert), privateKey: readPem('--store-key', opts.key!) } : {}),
      }
    : undefined;
  return new Etcd3({ hosts, dialTimeout: opts.dialTimeoutMs ?? 2000, grpcOptions: GRPC_OPTIONS, ...(credentials ? { credentials } : {}) });
}

/**
 * gRPC reports a refused TLS handshake as "14 UNAVAILABLE: No connection established. Last
 * error: …ssl3_read_bytes:sslv3 alert bad certificate…", spread over two lines: that the member
 * wants a client certificate (or distrusts ours), or that --store-ca does not sign the member's,
 * is said first, in the flags' words; the raw message follows on the same line.
 */
export function describeEtcdError(err: Error, tls: { ca?: string | undefined; cert?: string | undefined }): string {
  const raw = err.message.replace(/\s*\n\s*/g, ' ').trim();
  let why: string | undefined;
  if (/alert (bad certificate|certificate required|unknown ca)|SSL alert number (42|48|116)\b/i.test(raw)) {
    why =
      tls.cert === undefined
        ? 'TLS: the member demands a client certificate (etcd --client-cert-auth): give --store-cert and --store-key'
        : `TLS: the member refused the client certificate ${tls.cert} (not signed by a CA it trusts?)`;
  } else if (tls.ca !== undefined && /unable to verify|self[- ]signed certificate|certificate has expired|certificate is not yet valid|does not match certificate|ERR_TLS_CERT_ALTNAME/i.test(raw)) {
    why = `TLS: the member's certificate does not check against --store-ca ${tls.ca}`;
  }
  return why ? `${why} (${raw})` : raw;
}
