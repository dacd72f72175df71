/** Moving weights between a fused engine's arrays and the TF.js model's layers. */
import * as tf from '@tensorflow/tfjs';

/** Values of a layer's weights (kernel, then bias if any), as flat arrays. */
export function readLayerWeights(model: tf.LayersModel, name: string): Float32Array[] {
  return model.getLayer(name).getWeights().map((t) => t.dataSync() as Float32Array);
}

/** Write flat arrays into a layer's weights (same order and sizes as its getWeights()). */
export function writeLayerWeights(model: tf.LayersModel, name: string, arrays: Float32Array[]): void {
  const layer = model.getLayer(name);
  const shapes = layer.getWeights().map((t) => t.shape);
  const tensors = arrays.map((a, i) => tf.tensor(a, shapes[i]));
  layer.setWeights(tensors); // copies the values into the layer's variables
  tensors.forEach((t) => t.dispose());
}
