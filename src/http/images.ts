import Router from '@koa/router';
import type Koa from 'koa';
import send from 'send';
import type { BootTimeline } from '../events/timeline.ts';
import type { Metrics } from '../metrics.ts';
import { fail } from './errors.ts';
import { type BodyWriter, writeFileBody } from './file-body.ts';
import { clientIp, named, requestInfo } from './request-info.ts';

interface SendError extends Error {
  status?: number;
  headers?: Record<string, string>;
}

const SEND_OPTIONS = { index: false, dotfiles: 'deny', etag: true, lastModified: true, acceptRanges: true, maxAge: 0 } as const;

type Outcome = { sent: true } | { sent: false; error: SendError };

/**
 * Serves one file under `root` with `send`, which does Range (206, suffix ranges, 416),
 * ETag/Last-Modified (304), HEAD and refuses traversal and dotfiles. Errors found before
 * the first byte come back to be answered by Koa as text; once `send` writes, Koa stays
 * out of the response.
 */
export async function sendFile(c: Koa.Context, root: string, urlPath: string, writer: BodyWriter = 'sendfile', written?: (used: BodyWriter) => void): Promise<Outcome> {
  const outcome = await new Promise<Outcome>((resolve) => {
    const stream = send(c.req, urlPath, { ...SEND_OPTIONS, root });
    // send decides the status, headers and range; the bytes go out by sendfile(2) or through reused buffers (file-body.ts, --http-sendfile).
    stream.stream = (path: string, options: { start?: number } = {}) => {
      void writeFileBody(
        c.res,
        path,
        options.start ?? 0,
        Number(c.res.getHeader('content-length') ?? 0),
        (err) => {
          // As send answers a failed stat: a file that is gone is a 404, anything else a 500.
          const code = (err as NodeJS.ErrnoException).code;
          stream.emit('error', Object.assign(err, { status: code === 'ENOENT' || code === 'ENOTDIR' ? 404 : 500 }));
        },
        writer,
      ).then((used) => used && written?.(used));
    };
    stream.on('error', (error: SendError) => resolve({ sent: false, error }));
    stream.on('directory', () => resolve({ sent: false, error: Object.assign(new Error('is a directory'), { status: 404 }) }));
    stream.on('headers', (res: Koa.Context['res'], filePath: string) => {
      // UEFI HTTP Boot refuses an EFI program served as octet-stream unless the URL ends in .efi (wire.md).
      if (filePath.toLowerCase().endsWith('.efi')) res.setHeader('Content-Type', 'application/efi');
    });
    c.res.once('finish', () => resolve({ sent: true }));
    c.res.once('close', () => resolve({ sent: true }));
    // Koa presets 404; send sets 206/304/416 itself but never 200.
    c.res.statusCode = 200;
    stream.pipe(c.res);
  });
  if (outcome.sent || c.res.headersSent) {
    c.respond = false;
    if (!outcome.sent) c.res.destroy(outcome.error);
    return { sent: true };
  }
  return outcome;
}

/** The request path as the timeline compares it with the URLs a boot script names (decoded). */
function decodedPath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function clearHeaders(res: Koa.Context['res']): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
}

export interface ImagesRoutesDeps {
  /** --images-path. */
  imagesPath: string;
  timeline: Pick<BootTimeline, 'record'>;
  /** How bodies are written; default sendfile where it runs (file-body.ts). */
  imageBodies?: BodyWriter;
  metrics: Pick<Metrics, 'imageBodies'>;
}

/**
 * GET|HEAD /images/…: kernels and initrds from --images-path. /assets/… is the same folder under
 * the name matchbox serves it, so a matchbox data directory's profiles boot unchanged.
 */
export function imagesRouter({ imagesPath, timeline, imageBodies, metrics }: ImagesRoutesDeps): Router {
  const router = new Router();
  for (const prefix of ['/images', '/assets']) {
    router.get(
      `${prefix}/{*path}`,
      named('images', async (c) => {
        // The raw (still percent-encoded) path: send decodes it once and checks for `..` after decoding.
        const rel = c.path.slice(prefix.length);
        requestInfo(c).file = rel;
        const outcome = await sendFile(c, imagesPath, rel, imageBodies, (used) => metrics.imageBodies.inc({ writer: used }));
        const record = (status: number, reason?: string) => {
          const length = c.res.getHeader('content-length');
          timeline.record({
            step: 'http.image',
            ip: clientIp(c),
            detail: { path: decodedPath(c.path), status, bytes: length === undefined ? undefined : Number(length), range: c.get('range') || undefined, reason },
          });
        };
        if (outcome.sent) return record(c.status);
        const status = outcome.error.status ?? 500;
        clearHeaders(c.res);
        if (outcome.error.headers) c.set(outcome.error.headers);
        const why = status === 404 ? 'no such file' : status === 403 ? 'forbidden path' : status === 416 ? 'range not satisfiable' : outcome.error.message;
        record(status, why);
        fail(c, status, `${status} ${why}: ${prefix}${rel}`, why);
      }),
    );
  }
  return router;
}
