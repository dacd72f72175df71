#!/usr/bin/env node
import { main } from '../dist/src/cli/index.js';

main(process.argv).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`glonet: internal error: ${e && e.stack ? e.stack : e}\n`);
    process.exit(70);
  },
);
