/**
 * A localhost HTTP server for a `glonet web` site held in memory. It serves exactly the site's
 * files (a fixed map, so no path on disk is ever reachable), GET and HEAD only, uncached, and only
 * to requests addressed to it: the Host header must name the loopback address or localhost with
 * its port (as webpack-dev-server and Jupyter check), so a web page whose own name an attacker
 * rebinds to 127.0.0.1 cannot read the run, its model or its data. Every answer says
 * `X-Content-Type-Options: nosniff` and carries the page's content security policy (PAGE_POLICY).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SiteFiles } from './site.js';
import { GlonetError } from '../errors.js';
import { PAGE_POLICY } from './site-format.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
};

function contentType(name: string): string {
  const dot = name.lastIndexOf('.');
  return TYPES[dot >= 0 ? name.slice(dot) : ''] ?? 'application/octet-stream';
}

interface SiteServer {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  close(): Promise<void>;
}

class PortError extends GlonetError {
  override name = 'PortError';
}

const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff', 'content-security-policy': PAGE_POLICY, 'referrer-policy': 'no-referrer', 'cross-origin-resource-policy': 'same-origin' };

/** What a request gets while the site is still being built: a page that reloads itself. */
const STARTING_PAGE = '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>glonet web</title>'
  + '<p>glonet web is preparing the page (analysing the run\'s sample); it loads by itself in a moment.</p>\n';

/** True when a Host header names this server: 127.0.0.1, localhost or [::1], with its port (or none). */
function ownHost(host: string | undefined, port: number): boolean {
  if (host == null) return false;
  const m = /^(127\.0\.0\.1|localhost|\[::1\])(?::(\d+))?$/i.exec(host.trim());
  return m != null && (m[2] == null || Number(m[2]) === port);
}

function handle(files: SiteFiles, port: () => number, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (!ownHost(req.headers.host, port())) {
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS })
      .end(`forbidden: this server answers requests for 127.0.0.1:${port()} or localhost:${port()} only\n`);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', ...SECURITY_HEADERS }).end();
    return;
  }
  let name: string;
  try {
    name = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).replace(/^\/+/, '');
  } catch {
    res.writeHead(400, SECURITY_HEADERS).end();
    return;
  }
  if (name === '' || name.endsWith('/')) name += 'index.html';
  if (files.size === 0) {
    // The server takes its port before the site is built (a busy port fails at once); until the
    // files arrive, say so, and let a browser try again by itself.
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'retry-after': '2', 'cache-control': 'no-store', ...SECURITY_HEADERS })
      .end(req.method === 'HEAD' ? undefined : STARTING_PAGE);
    return;
  }
  const body = files.get(name);
  if (!body) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end(`not found: /${name}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': contentType(name), 'content-length': body.byteLength, 'cache-control': 'no-store', ...SECURITY_HEADERS });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Serve `files` on `host:port` (port 0: any free port). */
export function serveSite(files: SiteFiles, o: { port: number; host?: string }): Promise<SiteServer> {
  const host = o.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => handle(files, () => (server.address() as AddressInfo).port, req, res));
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE' ? new PortError(`--port ${o.port}: the port is in use; choose another (0 picks a free one)`)
        : e.code === 'EACCES' ? new PortError(`--port ${o.port}: not allowed to listen on this port; choose one above 1023`) : e);
    });
    server.listen(o.port, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${host}:${port}/`,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
