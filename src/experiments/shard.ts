/**
 * Which share of an experiment's cells this process runs. `--shard I/N` runs the cells whose
 * 0-based index is I-1 modulo N. Without the flag the shard comes from the cluster engine that
 * started the process, so one job definition runs every shard:
 *   Slurm job arrays      SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT
 *   Kubernetes Indexed Job JOB_COMPLETION_INDEX (0-based), with the count from --shard-count or
 *                         GLONET_SHARD_COUNT (the Job's `completions`)
 * Shards share one output folder; `glonet experiment report` merges whatever cells exist.
 */
import { ExperimentError } from './experiment.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
  /** Where the shard came from, for the log line. */
  source: string;
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v == null || v.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(v)) throw new ExperimentError(`${name}: expected a non-negative integer, got '${v}'`);
  return Number(v);
}

export function resolveShard(flag: { index: number; count: number } | undefined, shardCount: number | undefined, env: NodeJS.ProcessEnv = process.env): Shard | null {
  if (flag && shardCount != null) {
    throw new ExperimentError(`--shard-count ${shardCount}: --shard ${flag.index}/${flag.count} already says the number of shards; give one or the other (--shard-count is for Kubernetes Indexed Jobs)`);
  }
  if (flag) return { ...flag, source: '--shard' };
  const slurmId = envInt(env, 'SLURM_ARRAY_TASK_ID');
  if (slurmId != null) {
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN') ?? 0;
    const count = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    if (count == null) throw new ExperimentError('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: run as a Slurm job array (sbatch --array=0-N) or pass --shard I/N');
    const index = slurmId - min + 1;
    if (index < 1 || index > count) {
      throw new ExperimentError(`SLURM_ARRAY_TASK_ID ${slurmId} is outside the array (min ${min}, count ${count}): use a contiguous array such as --array=0-${count - 1}, or pass --shard I/N`);
    }
    return { index, count, source: `Slurm array task ${slurmId}` };
  }
  const k8s = envInt(env, 'JOB_COMPLETION_INDEX');
  if (k8s != null) {
    const count = shardCount ?? envInt(env, 'GLONET_SHARD_COUNT');
    if (count == null || count < 1) {
      throw new ExperimentError('JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards: pass --shard-count N or set GLONET_SHARD_COUNT to the Job\'s completions');
    }
    if (k8s >= count) throw new ExperimentError(`JOB_COMPLETION_INDEX ${k8s} is not below the shard count ${count}: the Job's completions and --shard-count / GLONET_SHARD_COUNT must agree`);
    return { index: k8s + 1, count, source: `Kubernetes completion index ${k8s}` };
  }
  if (shardCount != null) throw new ExperimentError('--shard-count applies to Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX is not set); use --shard I/N to pick a shard by hand');
  return null;
}

/** Does the cell at this 0-based index belong to the shard? */
export function inShard(index: number, shard: Shard | null): boolean {
  return shard == null || index % shard.count === shard.index - 1;
}
