// The kernel records of the structured and variant ops (shaders/structured.wgsl): the noise-shape
// mask, DropPath's residual form, the fused bias + dropout + residual add and its bias gradient
// (shaders/bias_grad.wgsl), Gaussian and Alpha dropout.
import { gridKernel } from './elementwise.js';
import { type KernelRecord, read, write } from './record.js';
import type { ShaderName } from './shaders.js';

/** The shader files of every structured kernel. */
const structuredShaders: readonly ShaderName[] = ['philox', 'elementwise', 'data', 'structured'];

/** The bias gradient's (shaders/bias_grad.wgsl). */
const biasGradShaders: readonly ShaderName[] = ['philox', 'elementwise', 'data', 'biasGrad'];
const x = read(1);
const out = write(2);
const residual = read(3);
/** The mask table (binding 6, shaders/structured.wgsl), bound whole for every chunk: the runtime
 * binds the call's table, or a placeholder where it uses none (src/runtime/broadcast.ts). */
const maskTable = read(6, 'whole');
/** A kernel whose elements take the words of their broadcast mask index. */
const broadcast = { mask: 'broadcast', maskTableHolds: 'words' } as const;

export const structuredKernels = {
  masked: gridKernel('structured.masked', structuredShaders, 'masked', { ...broadcast, bindings: { x, out, maskTable }, uniforms: {} }),
  keepMask: gridKernel('structured.keep_mask', structuredShaders, 'keep_mask', {
    ...broadcast,
    bindings: { out: write(2, 'word'), maskTable },
    uniforms: {},
  }),
  residual: gridKernel('structured.residual', structuredShaders, 'residual', {
    ...broadcast,
    bindings: { x, out, residual, maskTable },
    uniforms: {},
  }),
  biasResidual: gridKernel('structured.bias_residual', structuredShaders, 'bias_residual', {
    ...broadcast,
    bindings: { x, out, residual, bias: read(5, 'whole'), maskTable },
    uniforms: { columns: 'u32' },
  }),
  /** Bias gradient, stage 1 (one invocation per partial sum) and stage 2 (one per column). */
  biasGradPartial: {
    name: 'structured.bias_grad_partial',
    shader: biasGradShaders,
    entry: 'bias_grad_partial',
    dispatch: 'element',
    mask: 'none',
    bindings: { dx: read(1, 'whole'), partial: write(2, 'word') },
    uniforms: { cols: 'u32', rows: 'u32', per_block: 'u32' },
  },
  biasGradFinal: {
    name: 'structured.bias_grad_final',
    shader: biasGradShaders,
    entry: 'bias_grad_final',
    dispatch: 'element',
    mask: 'none',
    bindings: { partial: read(1, 'whole'), out },
    uniforms: { cols: 'u32', rows: 'u32', per_block: 'u32' },
  },
  /** Its mask table holds the mask elements' normals (as f32 bits), not their words. */
  gaussian: gridKernel('structured.gaussian', structuredShaders, 'gaussian', {
    mask: 'broadcast',
    maskTableHolds: 'normals',
    bindings: { x, out, maskTable },
    uniforms: { sigma: 'f32' },
  }),
  alpha: gridKernel('structured.alpha', structuredShaders, 'alpha', {
    ...broadcast,
    bindings: { x, out, maskTable },
    uniforms: { a: 'f32', b: 'f32', alpha_prime: 'f32' },
  }),
  alphaBackward: gridKernel('structured.alpha_backward', structuredShaders, 'alpha_backward', {
    ...broadcast,
    bindings: { x, out, maskTable },
    uniforms: { a: 'f32' },
  }),
} as const satisfies Record<string, KernelRecord>;
