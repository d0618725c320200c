// webgpu-dropout/reference: the CPU reference of every op, on the same contract as the kernels
// (docs/DESIGN.md), in plain TypeScript: the words, uniforms, normals and keep-masks of
// (seed, stream, offset), dropout and its variants forward and backward, and the model kit's MLP,
// loss and MC-Dropout statistics. Tests and users compare GPU output with it bit for bit.

/**
 * The CPU reference of every op, in plain TypeScript and on the same mask contract as the GPU
 * kernels: the raw words, uniforms, normals and keep-masks of (seed, stream, offset), dropout and
 * its variants forward and backward, and the model kit's MLP, loss and MC-Dropout statistics. No
 * GPU is needed; results equal the GPU's bit for bit (within a stated tolerance for normals,
 * floating-point sums and the f64 model kit). f16 data travel as Uint16Array bit patterns. Bad
 * arguments throw `InvalidArgumentError`, as the ops do.
 *
 * ```ts
 * import { referenceDropout } from 'webgpu-dropout/reference';
 * const y = referenceDropout(new Float32Array([1, 2, 3, 4]), { p: 0.5, seed: 42n }); // dropout()'s output
 * ```
 * @module webgpu-dropout/reference
 */

export {
  type ReferenceMcStats,
  type ReferenceMlp,
  type ReferenceSample,
  referenceLoss,
  referenceMcStats,
  referenceMlpForward,
} from './model/reference.js';
export * from './reference/dropout.js';
export { philox4x32_10 } from './reference/philox.js';
export {
  type ReferenceStructured,
  referenceAlphaDropout,
  referenceAlphaDropoutBackward,
  referenceBiasDropoutResidual,
  referenceBiasDropoutResidualBackward,
  referenceDropPathAdd,
  referenceGaussianDropout,
  referenceGaussianDropoutBackward,
  referenceMaskIndices,
  referenceStructuredDropout,
  referenceStructuredDropoutBackward,
  referenceStructuredKeep,
} from './reference/structured.js';
