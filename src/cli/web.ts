/** `glonet web RUN [--port P]` serves a run's page on localhost; `--out SITE` writes it as a static folder. */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { BACKENDS, initBackend } from '../backend/index.js';
import { buildSite, checkSiteFolder, writeSite, type SiteFiles } from '../site/site.js';
import { serveSite } from '../site/server.js';
import { port, positiveInt } from './parse.js';

export function webCommand(): Command {
  return new Command('web')
    .description('a page for a trained run: the depth dial, explanations of your own inputs and a GloNet playground, all in the browser with TF.js; serves it on localhost, or writes a static folder with --out')
    .argument('<dir>', 'run folder written by glonet train')
    .option('--port <p>', 'localhost port to serve on, 0 to 65535 (0: any free port)', port, 8765)
    .option('--out <site>', 'write the page as a static folder for any web host instead of serving it')
    .option('--sample <n>', 'test examples shipped with the page (default 2000, or the whole test set when smaller)', positiveInt)
    .addOption(new Option('--backend <name>', 'TF.js backend for the Node-side analysis of the sample (default: the fastest that loads)').choices(BACKENDS))
    .action(async (dir: string, o: { port: number; out?: string; sample?: number; backend?: string }) => {
      const backend = await initBackend(o.backend);
      if (o.out) {
        checkSiteFolder(o.out);
        const files = await buildSite(dir, { sampleRows: o.sample, backend });
        await writeSite(files, o.out);
        process.stdout.write(`wrote ${path.resolve(o.out)} (${files.size} files); serve it with any static web server, for example: python3 -m http.server -d ${o.out}\n`);
        return;
      }
      // Take the port first (a busy port fails at once), then fill in the files it serves.
      const files: SiteFiles = new Map();
      const server = await serveSite(files, { port: o.port });
      for (const [name, data] of await buildSite(dir, { sampleRows: o.sample, backend })) files.set(name, data);
      process.stdout.write(`serving ${dir} at ${server.url} (Ctrl-C stops)\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
      process.stdout.write('stopped\n');
    });
}
