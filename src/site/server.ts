/**
 * A localhost HTTP server for a `glonet web` site held in memory. It serves exactly the site's
 * files (a fixed map, so no path on disk is ever reachable), GET and HEAD only, uncached.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SiteFiles } from './site.js';
import { GlonetError } from '../errors.js';

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

function handle(files: SiteFiles, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  let name: string;
  try {
    name = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).replace(/^\/+/, '');
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (name === '' || name.endsWith('/')) name += 'index.html';
  const body = files.get(name);
  if (!body) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: /${name}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': contentType(name), 'content-length': body.byteLength, 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Serve `files` on `host:port` (port 0: any free port). */
export function serveSite(files: SiteFiles, o: { port: number; host?: string }): Promise<SiteServer> {
  const host = o.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => handle(files, req, res));
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
