/**
 * The `glonet` command line. Every problem ends as one line on stderr, `glonet: ...`, and an exit
 * code: 2 for bad input (options, files, folders), 1 for runtime failures (divergence, a write
 * that failed), 130/143 for an interrupted run, 70 for a bug. No stack trace unless
 * GLONET_DEBUG=1. A closed stdout (`glonet train ... | head -1`) does not stop the work.
 */
import { Command, CommanderError } from 'commander';
import { trainCommand } from './train.js';
import { demoCommand } from './demo.js';
import { analyzeCommand, predictCommand, truncateCommand } from './analysis.js';
import { infoCommand } from './info.js';
import { webCommand } from './web.js';
import { experimentCommand } from './experiment.js';
import { ExitError } from './errors.js';
import { GlonetError } from '../errors.js';
import { VERSION } from '../version.js';

/** The exit code of each kind of glonet error (src/errors.ts); an interrupted run exits through an ExitError with its signal's code. */
const EXIT_CODES: Record<GlonetError['kind'], number> = { input: 2, runtime: 1, interrupted: 130 };

/** Commander's messages ("error: ...", sometimes with a second line of suggestions) as one line. */
function oneLineErrors(cmd: Command, name: string): Command {
  cmd.configureOutput({
    outputError: (text, write) => write(`${name}: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see ${name} --help)\n`),
  });
  // Nested commands (glonet experiment run ...) answer the same way.
  for (const sub of cmd.commands) oneLineErrors(sub, `${name} ${sub.name()}`);
  return cmd;
}

function buildProgram(): Command {
  const program = oneLineErrors(new Command('glonet'), 'glonet')
    .description('Globally Connected Neural Networks (GloNet, arXiv 2311.15947) on TensorFlow.js')
    .version(VERSION)
    .exitOverride();
  for (const sub of [trainCommand(), analyzeCommand(), truncateCommand(), predictCommand(), demoCommand(), infoCommand(), webCommand(), experimentCommand()]) {
    program.addCommand(oneLineErrors(sub, `glonet ${sub.name()}`).exitOverride());
  }
  return program;
}

/** Writing to a closed stdout or stderr (a pipe whose reader left) is not an error of the command. */
function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') === 0) stream.on('error', () => {});
  }
}

/** Print an error as one line and return the exit code. */
function reportError(e: unknown): number {
  const say = (msg: string) => process.stderr.write(`glonet: ${msg.split('\n')[0]}\n`);
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof ExitError) {
    say(e.message);
    return e.code;
  }
  if (e instanceof GlonetError) {
    say(e.message);
    return EXIT_CODES[e.kind];
  }
  say(`internal error: ${(e as Error)?.message ?? e} (a bug in glonet; GLONET_DEBUG=1 shows where)`);
  return 70;
}

export async function main(argv: string[]): Promise<number> {
  ignoreClosedOutput();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    // A command that set an exit code (and printed why) keeps it: main's caller exits with what is returned.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (process.env.GLONET_DEBUG === '1' && !(e instanceof CommanderError)) process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    return reportError(e);
  }
}
