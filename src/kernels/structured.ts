// The kernel records of the structured and variant ops (shaders/structured.wgsl): the noise-shape
// mask, DropPath's residual form, the fused bias + dropout + residual add and its bias gradient,
// Gaussian and Alpha dropout.
import { gridKernel, type KernelRecord } from './elementwise.js';
import type { ShaderName } from './shaders.js';

/** The shader files of every structured kernel. */
export const structuredShaders: readonly ShaderName[] = ['philox', 'elementwise', 'data', 'structured'];

function vec4Kernel(name: string, section: string, bindings: KernelRecord['bindings']): KernelRecord {
  return gridKernel(name, structuredShaders, section, bindings);
}

const data = { 1: 'data', 2: 'data' } as const;
/** The mask table (binding 6, shaders/structured.wgsl), bound whole for every chunk. */
const table = { 6: 'whole' } as const;

export const structuredKernels = {
  masked: vec4Kernel('structured.masked', 'masked', { ...data, ...table }),
  keepMask: vec4Kernel('structured.keep_mask', 'keep_mask', { 2: 'word', ...table }),
  residual: vec4Kernel('structured.residual', 'residual', { ...data, 3: 'data', ...table }),
  biasResidual: vec4Kernel('structured.bias_residual', 'bias_residual', { ...data, 3: 'data', 5: 'whole', ...table }),
  biasGradPartial: { name: 'structured.bias_grad_partial', shader: structuredShaders, section: 'bias_grad', entry: 'bias_grad_partial', perInvocation: 1, bindings: { 1: 'whole', 2: 'word' } },
  biasGradFinal: { name: 'structured.bias_grad_final', shader: structuredShaders, section: 'bias_grad', entry: 'bias_grad_final', perInvocation: 1, bindings: { 1: 'whole', 2: 'data' } },
  gaussian: vec4Kernel('structured.gaussian', 'gaussian', { ...data, ...table }),
  alpha: vec4Kernel('structured.alpha', 'alpha', { ...data, ...table }),
  alphaBackward: vec4Kernel('structured.alpha_backward', 'alpha_backward', { ...data, ...table }),
} satisfies Record<string, KernelRecord>;

/** The kernels that map elements to mask indices through the broadcast table (the bias-gradient
 * kernels read other words at binding 4) and read a mask table where TABLE is set. */
export const maskIndexed: ReadonlySet<KernelRecord> = new Set([
  structuredKernels.masked,
  structuredKernels.keepMask,
  structuredKernels.residual,
  structuredKernels.biasResidual,
  structuredKernels.gaussian,
  structuredKernels.alpha,
  structuredKernels.alphaBackward,
]);
