/** What `glonet train` does after training: the report. */
import * as path from 'node:path';
import type { RunResult } from '../train/run.js';

export async function afterTraining(result: RunResult, opts: { report: boolean }): Promise<string | undefined> {
  if (!opts.report) return undefined;
  const { writeReport } = await import('../report/report.js');
  const file = await writeReport(result.dir);
  process.stdout.write(`report: ${path.resolve(file)}\n`);
  return file;
}
