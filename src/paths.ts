import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The installed package's root folder (where package.json and data/ live). */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'glonet') return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error('glonet: cannot find the package root');
    dir = up;
  }
}

export function bundledData(...parts: string[]): string {
  return path.join(packageRoot(), 'data', ...parts);
}
