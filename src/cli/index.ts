/** The `glonet` command line. Bad usage: one line on stderr, exit code 2. */
import { Command, CommanderError } from 'commander';
import { trainCommand } from './train.js';
import { demoCommand } from './demo.js';
import { analyzeCommand, predictCommand, truncateCommand } from './analysis.js';
import { infoCommand } from './info.js';
import { webCommand } from './web.js';
import { AnalysisError } from '../analysis/blocks.js';
import { UsageError } from './errors.js';
import { BackendError } from '../backend/index.js';
import { DataError } from '../data/dataset.js';
import { ModelConfigError } from '../models/family.js';
import { GloNetShapeError } from '../layers/glonet.js';
import { RunError } from '../train/run.js';
import { DivergedError } from '../train/trainer.js';
import { VERSION } from '../version.js';
import { SiteError } from '../web/site.js';
import { PortError } from '../web/server.js';

/** Errors that are the user's input, not a bug: reported as one line. */
const USER_ERRORS = [UsageError, BackendError, DataError, ModelConfigError, GloNetShapeError, RunError, AnalysisError, SiteError, PortError];

export function buildProgram(): Command {
  const program = new Command('glonet')
    .description('Globally Connected Neural Networks (GloNet, arXiv 2311.15947) on TensorFlow.js')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const sub of [trainCommand(), analyzeCommand(), truncateCommand(), predictCommand(), demoCommand(), infoCommand(), webCommand()]) {
    program.addCommand(sub.exitOverride().showHelpAfterError('(run with --help for usage)'));
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof DivergedError) {
      process.stderr.write(`glonet: ${e.message}\n`);
      return 1;
    }
    if (USER_ERRORS.some((E) => e instanceof E)) {
      process.stderr.write(`glonet: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}
