/**
 * The experiment folder, shared by every shard and machine that runs the experiment:
 *   DIR/experiment.json          what was asked (experiment, preset, data, every cell id)
 *   DIR/cells/<id>/              an ordinary run folder (metrics.json, model/, checkpoint/,
 *                                analysis.json, report.html) plus
 *     cell.json                  written last: the cell is finished
 *     failed.json                the error of a cell whose run failed (retried on the next run)
 *   DIR/results.json, DIR/REPORT.md, DIR/report.html   written by `glonet experiment report`
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentManifest } from '../contracts.js';
import { writeJsonAtomic } from '../io.js';
import { readManifestFile } from './cell-files.js';
import { ExperimentError } from './experiment.js';

const manifestFile = (dir: string) => path.join(dir, 'experiment.json');
export const cellDir = (dir: string, id: string) => path.join(dir, 'cells', id);
export const cellDoneFile = (dir: string, id: string) => path.join(cellDir(dir, id), 'cell.json');
export const cellFailedFile = (dir: string, id: string) => path.join(cellDir(dir, id), 'failed.json');

export function readManifest(dir: string): ExperimentManifest {
  if (!fs.existsSync(manifestFile(dir))) {
    throw new ExperimentError(`${dir}: not an experiment folder (no experiment.json); start one with glonet experiment run NAME --out ${dir}`);
  }
  return readManifestFile(dir, manifestFile(dir));
}

/**
 * Write the manifest, or check that the folder's own says the same: shards and reruns must run
 * the same grid on the same data, or their cells would not belong together.
 */
export function claimFolder(dir: string, manifest: ExperimentManifest): void {
  if (fs.existsSync(manifestFile(dir))) {
    const old = readManifest(dir);
    const same = (k: keyof ExperimentManifest) => JSON.stringify(old[k] ?? null) === JSON.stringify(manifest[k] ?? null);
    for (const k of ['experiment', 'preset', 'data', 'cells'] as const) {
      if (!same(k)) {
        const what = k === 'cells' ? `${old.cells.length} cells (seeds or preset differ)` : JSON.stringify(old[k]);
        throw new ExperimentError(`${dir} holds a run of ${old.experiment} --preset ${old.preset} with ${k} ${what}; rerun with the same arguments to resume it, or pass another --out`);
      }
    }
    return;
  }
  writeJsonAtomic(manifestFile(dir), manifest);
}
