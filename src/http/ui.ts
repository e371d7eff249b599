import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { named } from './request-info.ts';

/**
 * The assets sit beside this file (no front-end build): src/http/ui/ when it runs through tsx,
 * dist/http/ui/ after `npm run build`, which copies them there, so a built package needs no src/.
 */
const ASSET_DIR = new URL('./ui/', import.meta.url);

const ASSETS: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/ui/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** The page only talks to its own origin and runs no inline code. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** GET /ui: the machines page (list, per-machine timeline, stalled boots flagged). */
export function uiRouter(): Router {
  // Read once: a handful of small files, and a missing one should fail at start, not per request.
  const bodies = new Map(Object.entries(ASSETS).map(([route, a]) => [route, { ...a, body: readFileSync(new URL(a.file, ASSET_DIR)) }]));
  const router = new Router();
  for (const [route, asset] of bodies) {
    router.get(
      route,
      named(
        'ui',
        (c) => {
          c.type = asset.type;
          c.set('Content-Security-Policy', CSP);
          c.set('X-Content-Type-Options', 'nosniff');
          c.set('Cache-Control', 'no-cache');
          c.body = asset.body;
        },
        { quiet: true },
      ),
    );
  }
  return router;
}
