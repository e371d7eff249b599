/**
 * The hot boot routes (/boot.ipxe, /ipxe, /grub) answered on node:http itself, ahead of Koa.
 * A rack powering on asks for them all at once, and Koa's context, compose chain and router
 * cost more than the answer (bench/http/README.md: 70 µs of CPU per /ipxe through Koa, of
 * which the lookup, the render, the timeline and the log line are a fraction). Each answer is
 * short text; what a route throws is answered by errors.ts errorAnswer and every request gets
 * the log line and count of request-log.ts, exactly as Koa's routes do. Every other request
 * goes to Koa.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorAnswer } from './errors.ts';
import type { RawQuery } from './machine-query.ts';
import type { AnsweredRequest } from './request-log.ts';
import { plainIp, type RequestInfo } from './request-info.ts';

/** What a lean route reads of its request. */
export interface LeanRequest {
  /** The raw path, as Koa's c.path. */
  readonly path: string;
  /** Without the `?`, as Koa's c.querystring. */
  readonly querystring: string;
  /** Parsed on first use, as Koa's c.query. */
  readonly query: RawQuery;
  /** The client's IPv4 as the timeline keys it (request-info.ts clientIp). */
  readonly ip: string;
  /** What the route tells the request log. */
  readonly info: RequestInfo;
}

/** A route answering GET (and HEAD) with text/plain; it ends a request it cannot serve with errors.ts failure(). */
export interface LeanRoute {
  /** The route label for the log and metrics (request-info.ts `named`). */
  name: string;
  answer(request: LeanRequest): string;
}

/** Exact paths (matched as @koa/router does: case-insensitive, one trailing slash allowed) → route. */
export type LeanRoutes = Readonly<Record<string, LeanRoute>>;

export interface LeanPathDeps {
  logged: (request: AnsweredRequest) => void;
  /** A route's bug (not a failure() it meant): Koa's app 'error' event does the same for its routes. */
  onBug: (err: unknown) => void;
}

/** @koa/router's answer for a known path and another method: the same Allow list. */
const ALLOW = 'HEAD, GET';

function add(query: Record<string, string | string[]>, key: string, value: string): void {
  const seen = Object.hasOwn(query, key) ? query[key] : undefined;
  const next = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  // A key named __proto__ is data here, as with Koa's defineProperty (an assignment would set the prototype).
  if (key === '__proto__') Object.defineProperty(query, key, { value: next, enumerable: true, writable: true, configurable: true });
  else query[key] = next;
}

/**
 * Koa's c.query: URLSearchParams decoding, a repeated parameter as an array (koa/lib/search-params.js).
 * iPXE's query (`uuid=…&mac=52-54-…&domain=&…`) has nothing to decode; splitting it by hand
 * gives the same pairs as URLSearchParams without its decoding pass and iterator, so only text
 * with `%` or `+` goes through it (test/http/lean-path.test.ts compares the two).
 */
export function parseQuery(querystring: string): RawQuery {
  const query: Record<string, string | string[]> = {};
  if (querystring === '') return query;
  if (querystring.includes('%') || querystring.includes('+')) {
    for (const [key, value] of new URLSearchParams(querystring)) add(query, key, value);
    return query;
  }
  for (const pair of querystring.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) add(query, pair, '');
    else add(query, pair.slice(0, eq), pair.slice(eq + 1));
  }
  return query;
}

class Request implements LeanRequest {
  readonly info: RequestInfo = {};
  private parsed: RawQuery | undefined;

  constructor(
    readonly path: string,
    readonly querystring: string,
    readonly ip: string,
  ) {}

  get query(): RawQuery {
    this.parsed ??= parseQuery(this.querystring);
    return this.parsed;
  }
}

/**
 * The path and query of a request target. A client behind a proxy, or a proxy itself, sends the
 * absolute form (`GET http://host/ipxe?… HTTP/1.1`, RFC 9112 §3.2.2), which Koa routes by its
 * path: so must the lean path, or those requests would reach Koa, which has no such route.
 */
function originForm(url: string): string {
  if (url.startsWith('/')) return url;
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return url;
  }
}

function routeKey(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
}

function answer(res: ServerResponse, status: number, body: string, allow: boolean): void {
  // The flat array form: node:http writes it as given, without its header object's bookkeeping.
  const headers = ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body))];
  if (allow) headers.push('Allow', ALLOW);
  res.writeHead(status, headers);
  // node:http sends no body to a HEAD request.
  res.end(body);
}

/** `routes` answered here, every other request by `fallback` (Koa's callback). */
export function leanPath(routes: LeanRoutes, fallback: RequestListener, { logged, onBug }: LeanPathDeps): RequestListener {
  const table = new Map(Object.entries(routes).map(([path, route]) => [routeKey(path), route]));
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const origin = originForm(url);
    const end = origin.indexOf('#');
    const target = end < 0 ? origin : origin.slice(0, end);
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const route = table.get(path) ?? table.get(routeKey(path));
    if (!route) return fallback(req, res);

    const started = performance.now();
    const method = req.method ?? 'GET';
    const request = new Request(path, q < 0 ? '' : target.slice(q + 1), plainIp(req.socket.remoteAddress ?? ''));
    const { info } = request;
    let status = 200;
    let body = '';
    let allow = false;
    if (method === 'GET' || method === 'HEAD') {
      info.route = route.name;
      try {
        body = route.answer(request);
      } catch (err) {
        const failed = errorAnswer(err);
        if (failed.bug) onBug(err);
        status = failed.status;
        info.reason = failed.reason;
        body = typeof failed.body === 'string' ? failed.body : JSON.stringify(failed.body);
      }
    } else {
      // As @koa/router's allowedMethods: OPTIONS lists the methods, anything else is refused with them.
      allow = true;
      if (method !== 'OPTIONS') {
        status = 405;
        body = 'Method Not Allowed';
      }
    }
    // Logged before the answer is written, as request-log.ts logs Koa's routes (`ms` is the handler's time).
    logged({ method, path, url, status, ip: request.ip, range: req.headers.range, info, started });
    answer(res, status, body, allow);
  };
}
