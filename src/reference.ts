// webgpu-dropout/reference: the CPU reference of every op, on the same contract as the kernels
// (docs/DESIGN.md), in plain TypeScript: the words, uniforms, normals and keep-masks of
// (seed, stream, offset), dropout and its variants forward and backward, and the model kit's MLP,
// loss and MC-Dropout statistics. Tests and users compare GPU output with it bit for bit.

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
