/** What runs after training: the analysis (demo) and the report. */
import * as path from 'node:path';
import type { RunResult } from '../train/run.js';

export async function afterTraining(result: RunResult, opts: { report: boolean; analyze: boolean }): Promise<string | undefined> {
  if (opts.analyze) {
    const { analyzeRun, describeAnalysis } = await import('../analysis/run.js');
    const a = await analyzeRun(result.dir, { backend: result.metrics.backend, report: false });
    for (const line of describeAnalysis(a, result.metrics, result.dir)) process.stdout.write(line + '\n');
  }
  if (!opts.report) return undefined;
  const { writeReport } = await import('../report/report.js');
  const file = await writeReport(result.dir);
  process.stdout.write(`report: ${path.resolve(file)}\n`);
  return file;
}
