/** `glonet info`: which backend and which training paths are active on this machine. */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { BACKENDS, initBackend } from '../backend/index.js';
import { fastPathInfo, fusedCnnInfo, fusedVitInfo } from '../engines/select.js';
import { RESNET20_ARCHS } from '../models/resnet20.js';
import { VIT_ARCHS } from '../models/vit.js';
import { VERSION } from '../version.js';

/** Said only where an engine cannot flush subnormal floats (then slow on Intel cores once they appear). */
function flushNote(flush: boolean | undefined): string {
  return flush === false ? ', subnormal floats not flushed on this CPU' : '';
}

export function infoCommand(): Command {
  return new Command('info')
    .description('show the TF.js backend glonet picks, the backends that load, and the fused training engine in use')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const chosen = await initBackend();
      const loads: Record<string, boolean> = {};
      for (const b of BACKENDS) {
        try {
          await initBackend(b);
          loads[b] = true;
        } catch {
          loads[b] = false;
        }
      }
      await initBackend(chosen);
      const fast = fastPathInfo();
      const cnn = fusedCnnInfo();
      const vit = fusedVitInfo();
      const info = { version: VERSION, tfjs: tf.version.tfjs, node: process.version, backend: chosen, backends: loads, fusedEngine: fast,
        fusedCnnEngine: { ...cnn, archs: RESNET20_ARCHS, optimizers: ['sgd', 'adam'] },
        fusedVitEngine: { ...vit, archs: VIT_ARCHS, optimizers: ['adam'] } };
      if (o.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const lines = [
        `glonet ${VERSION} (TF.js ${tf.version.tfjs}, Node ${process.version})`,
        `backend: ${chosen} (loads: ${BACKENDS.map((b) => `${b} ${loads[b] ? 'yes' : 'no'}`).join(', ')})`,
        `MLP training (Adam, every arch): fused ${fast.engine} engine` +
          (fast.engine === 'native' ? ` (${fast.simd} kernels, ${fast.threads} threads${flushNote(fast.flushSubnormals)}; ${fast.origin})` : ` (JavaScript fallback: ${fast.reason})`),
        `ResNet20 training (${RESNET20_ARCHS.join(', ')}; SGD or Adam): ` +
          (cnn.available ? `fused oneDNN ${cnn.onednn} engine (${cnn.isa}, ${cnn.threads} threads${flushNote(cnn.flushSubnormals)}; ${cnn.origin})` : `TF.js (fused CNN engine unavailable: ${cnn.reason})`),
        `ViT training (${VIT_ARCHS.join(', ')}; Adam): ` +
          (vit.available ? `fused native engine (${vit.kernels} kernels, ${vit.threads} threads${flushNote(vit.flushSubnormals)}; ${vit.origin})` : `TF.js (fused ViT engine unavailable: ${vit.reason})`),
        'other models: TF.js layers on the backend above' + (chosen === 'wasm' ? ' (with glonet\'s added wasm training kernels)' : ''),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
