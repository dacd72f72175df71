#!/bin/bash
# The paper preset of sgemm-depth (Tables 1-2: five MLP architectures, 10 to 1000 blocks, 200
# epochs on all of SGEMM; 29 cells) as a Slurm job array. Every array task runs its share of the
# cells (glonet reads SLURM_ARRAY_TASK_ID, _MIN and _COUNT); all of them write into one folder.
#
#   export OUT=/shared/glonet/sgemm-depth-paper
#   jid=$(sbatch --parsable examples/slurm-sweep.sh)
#   sbatch --dependency=afterany:$jid --wrap "npx glonet experiment report $OUT"
#
# Another experiment or preset: EXPERIMENT=mnist-depth PRESET=quick sbatch --array=0-7 ... (the
# command line's --array overrides the one below; `glonet experiment list` gives the cell counts).
# test/slurm.test.ts submits this very file to a one-node cluster with a smoke preset, requeues a
# task midway and checks the merged results against a single-process run.
#
# What it needs: OUT on a file system every node mounts at the same path, and glonet installed on
# every node (`npm install -g glonet`, or `npm ci` in a checkout on the shared file system with
# GLONET="node /path/to/glonet/bin/glonet.js"). A task that dies or is preempted loses at most the
# epoch it was in: resubmit (or `scontrol requeue`) and finished cells are skipped, an interrupted
# cell resumes from its last finished epoch. `glonet experiment report $OUT` can be run at any time;
# it lists the cells not finished yet by id.
#
#SBATCH --job-name=glonet-sgemm-depth
#SBATCH --array=0-28
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=48:00:00
#SBATCH --requeue
#SBATCH --output=glonet-sgemm-depth-%A_%a.log
set -euo pipefail
EXPERIMENT=${EXPERIMENT:-sgemm-depth}
PRESET=${PRESET:-paper}
OUT=${OUT:-$HOME/glonet/$EXPERIMENT-$PRESET}
GLONET=${GLONET:-npx glonet}
# With fewer array tasks than cells (say --array=0-7), each task runs every 8th cell in turn.
$GLONET experiment run "$EXPERIMENT" --preset "$PRESET" --out "$OUT"
