/**
 * The cluster recipe on a real Slurm: examples/slurm-sweep.sh itself, submitted with a smoke
 * preset as a job array of four tasks (two at a time), one task killed and requeued while it
 * trains, and the dependent report job; the merged results must equal a single-process run.
 * Needs a running cluster (`sudo sh scripts/slurm-cluster.sh start`, which .ci/run does);
 * skipped with a message without one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import type { ExperimentResults } from '../src/contracts.js';
import { BIN, ROOT, runCli, tmpDir } from './helpers.js';

function sh(cmd: string, args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

function clusterSkip(): string | false {
  const info = sh('sinfo', ['-h', '-o', '%T']);
  if (info.code !== 0) return `no Slurm cluster here (sinfo: ${info.err || 'not found'}); sudo sh scripts/slurm-cluster.sh start runs one, as .ci/run does`;
  if (!/^(idle|mixed|allocated)/m.test(info.out)) return `the Slurm node is not up (sinfo: ${info.out})`;
  return false;
}

const EXPERIMENT = 'sgemm-depth';
const readResults = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as ExperimentResults;
/** What two runs of the same cells must agree on: everything but the clocks and the load. */
const numbers = (r: ExperimentResults) => r.cells.map(({ seconds: _s, meanEpochSeconds: _m, epochDrift: _d, load: _l, ...rest }) => rest);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Slurm's state of one array task ('PENDING', 'RUNNING', ...), or '' once it has left the queue. */
function taskState(job: string, task: number): string {
  return sh('squeue', ['-h', '-r', '-j', `${job}_${task}`, '-o', '%T']).out;
}

test('examples/slurm-sweep.sh as a job array on a one-node cluster: a requeued task and the report job give the results of one process', { skip: clusterSkip(), timeout: 10 * 60_000 }, async () => {
  const ref = tmpDir('glonet-slurm-ref-');
  const one = runCli(['experiment', 'run', EXPERIMENT, '--preset', 'smoke', '--out', ref]);
  assert.equal(one.code, 0, one.stderr);
  const ids: string[] = JSON.parse(fs.readFileSync(path.join(ref, 'experiment.json'), 'utf8')).cells;
  assert.ok(ids.length >= 8, `${ids.length} cells: enough for four tasks`);

  const dir = tmpDir('glonet-slurm-');
  const out = path.join(dir, 'sweep');
  const env = `ALL,OUT=${out},EXPERIMENT=${EXPERIMENT},PRESET=smoke,GLONET=${process.execPath} ${BIN}`;
  const sub = sh('sbatch', ['--parsable', '--array=0-3%2', '--cpus-per-task=1', '--mem=2G', '--time=20', '--open-mode=append',
    `--output=${dir}/task-%a.log`, `--chdir=${ROOT}`, `--export=${env}`, path.join(ROOT, 'examples', 'slurm-sweep.sh')]);
  assert.equal(sub.code, 0, sub.err);
  const job = sub.out.split(';')[0];

  // Task 1 runs cells 1, 5, 9: requeue it (Slurm kills it) once its first cell has an epoch on disk.
  const firstOfTask1 = path.join(out, 'cells', ids[1], 'metrics.json');
  let requeued = false;
  for (const deadline = Date.now() + 5 * 60_000; Date.now() < deadline;) {
    let epochs = 0;
    try {
      epochs = JSON.parse(fs.readFileSync(firstOfTask1, 'utf8')).epochs.length;
    } catch { /* not there yet, or being replaced */ }
    if (epochs >= 1 && taskState(job, 1) === 'RUNNING') {
      const rq = sh('scontrol', ['requeue', `${job}_1`]);
      assert.equal(rq.code, 0, rq.err);
      requeued = true;
      break;
    }
    if (taskState(job, 1) === '' && fs.existsSync(path.join(out, 'cells', ids[9], 'cell.json'))) break;
    await sleep(20);
  }
  assert.ok(requeued, 'task 1 was requeued while it ran (it finished before it could be: make the cells longer)');

  // The report job, after every task (afterany: also after failed ones, as the example says).
  const report = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const p = spawn('sbatch', ['--wait', `--dependency=afterany:${job}`, '--cpus-per-task=1', '--mem=1G', `--output=${dir}/report.log`,
      `--chdir=${ROOT}`, `--wrap=${process.execPath} ${BIN} experiment report ${out}`]);
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, err }));
  });
  const logs = fs.readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => `${f}:\n${fs.readFileSync(path.join(dir, f), 'utf8')}`).join('\n');
  assert.equal(report.code, 0, `report job: ${report.err}\n${logs}`);

  const task1 = fs.readFileSync(path.join(dir, 'task-1.log'), 'utf8');
  assert.equal(task1.match(/shard 2\/4 \(Slurm array task 1\)/g)?.length, 2, `task 1 ran twice (requeued):\n${task1}`);
  for (const t of [0, 2, 3]) assert.match(fs.readFileSync(path.join(dir, `task-${t}.log`), 'utf8'), new RegExp(`shard ${t + 1}/4 \\(Slurm array task ${t}\\)`));
  const merged = readResults(out);
  assert.deepEqual(merged.missing, []);
  assert.deepEqual(merged.failed, []);
  assert.deepEqual(numbers(merged), numbers(readResults(ref)));
  const untimed = (r: ExperimentResults) => r.claims.map((c) => (c.timed ? `${c.id}: timed` : `${c.id}: ${c.verdict}`));
  assert.deepEqual(untimed(merged), untimed(readResults(ref)));
  assert.ok(fs.existsSync(path.join(out, 'REPORT.md')) && fs.existsSync(path.join(out, 'report.html')), 'the report job wrote the reports');
});
