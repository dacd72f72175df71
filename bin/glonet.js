#!/usr/bin/env node
// The `glonet` command. Errors that escape the command (an exception thrown from a callback, a
// rejected promise nobody awaited) are still one line and exit code 70; GLONET_DEBUG=1 adds the trace.
const debug = process.env.GLONET_DEBUG === '1';
const fatal = (e) => {
  process.stderr.write(debug ? `glonet: internal error: ${e && e.stack ? e.stack : e}\n`
    : `glonet: internal error: ${e && e.message ? e.message.split('\n')[0] : e} (a bug in glonet; GLONET_DEBUG=1 shows where)\n`);
  process.exit(70);
};
// Registered before anything else, so these run before handlers that libraries add later.
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

const { main } = await import('../dist/src/cli/index.js');
main(process.argv).then((code) => process.exit(code), fatal);
