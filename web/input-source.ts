/** Where the explained example comes from: the tabular form (./tabular-input.ts) or the image input (./image-input.ts). */
export interface InputSource {
  /** The model input for one example (float32, scaled as in training), or null while invalid. */
  current(): Float32Array | null;
}
