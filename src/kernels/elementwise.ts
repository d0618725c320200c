// One declarative record per kernel: which shader files, which entry points, what each binding
// holds. The context turns a record plus a call into chunked, vec4-wide dispatches.
import type { ShaderName } from './shaders.js';

/** What a storage binding holds, which fixes its bytes per element. */
export type BindingUnit =
  | 'data' // one element of the call's dtype (f32: 4 bytes, f16: 2 bytes)
  | 'word' // one u32 or f32 per element
  | 'bit' // packed mask: one bit per element, 32 per u32
  | 'whole'; // the caller's whole buffer at offset 0 for every chunk (a bias indexed by column)

export interface KernelRecord {
  /** Label and cache-key prefix. */
  readonly name: string;
  /** Shader files, concatenated after the dtype prelude. */
  readonly shader: readonly ShaderName[];
  /** Entry point over whole groups of `perInvocation` elements. */
  readonly entry: string;
  /** Scalar entry point for the last count % 4 elements' values. */
  readonly tail?: string;
  /** Elements one body invocation covers: 4 for vec4 kernels, 1 for scalar, 32 for one mask word;
   * the launch tuning decides it for 'strided' (grid-stride vec4 kernels: 4 x groupsPerInvocation)
   * and 'maskWord' (the forward that also writes the packed mask: 4 when mask words are assembled
   * in workgroup memory, else 32). See DropoutContext.invocations. */
  readonly perInvocation: 1 | 4 | 32 | 'strided' | 'maskWord';
  /** Storage bindings by number (binding 0 is always the Params uniform, 4 the optional aux uniform). */
  readonly bindings: Readonly<Record<number, BindingUnit>>;
  /** The storage bindings the kernel writes (read_write in WGSL); the others are read-only. Default [2]. */
  readonly writes?: readonly number[];
}

const data = { 1: 'data', 2: 'data' } as const;
const dropoutFiles = ['philox', 'elementwise', 'dropout'] as const;
const randomFiles = ['philox', 'elementwise', 'random'] as const;

function vec4Kernel(name: string, shader: readonly ShaderName[], entry: string, bindings: KernelRecord['bindings']): KernelRecord {
  return { name, shader, entry, tail: `${entry}_tail`, perInvocation: 4, bindings };
}

/** A vec4 kernel whose body loops over GROUPS_PER_INVOCATION grid-strided groups (elementwise.wgsl). */
function stridedKernel(name: string, shader: readonly ShaderName[], entry: string, bindings: KernelRecord['bindings']): KernelRecord {
  return { ...vec4Kernel(name, shader, entry, bindings), perInvocation: 'strided' };
}

export const kernels = {
  dropoutForward: stridedKernel('dropout.forward', dropoutFiles, 'forward', data),
  dropoutForwardInPlace: { ...stridedKernel('dropout.forward_inplace', dropoutFiles, 'forward_inplace', { 2: 'data' }), tail: 'forward_tail_inplace' },
  /** Forward plus the packed keep-mask in one pass. */
  dropoutForwardPacked: { name: 'dropout.forward_packed', shader: dropoutFiles, entry: 'forward_packed', tail: 'forward_packed_tail', perInvocation: 'maskWord', bindings: { ...data, 3: 'bit' }, writes: [2, 3] },
  dropoutMasked: stridedKernel('dropout.masked', dropoutFiles, 'masked', { ...data, 3: 'bit' }),
  dropoutMaskedInPlace: { ...stridedKernel('dropout.masked_inplace', dropoutFiles, 'masked_inplace', { 2: 'data', 3: 'bit' }), tail: 'masked_tail_inplace' },
  identity: stridedKernel('dropout.identity', dropoutFiles, 'identity', data),
  zeros: stridedKernel('dropout.zeros', dropoutFiles, 'zeros', { 2: 'data' }),
  words: stridedKernel('random.words', randomFiles, 'words', { 2: 'word' }),
  uniform: stridedKernel('random.uniform', randomFiles, 'uniform01', { 2: 'word' }),
  normal: stridedKernel('random.normal', randomFiles, 'normal', { 2: 'word' }),
  bernoulli: stridedKernel('random.bernoulli', randomFiles, 'bernoulli', { 2: 'word' }),
  bernoulliFill: { name: 'random.fill', shader: randomFiles, entry: 'fill', perInvocation: 1, bindings: { 2: 'word' } },
  bernoulliPacked: { name: 'random.bernoulli_packed', shader: randomFiles, entry: 'bernoulli_packed', perInvocation: 32, bindings: { 2: 'bit' } },
  bernoulliPackedFill: { name: 'random.fill_packed', shader: randomFiles, entry: 'fill_packed', perInvocation: 32, bindings: { 2: 'bit' } },
  copy: { name: 'copy', shader: ['philox', 'elementwise', 'copy'], entry: 'copy', perInvocation: 'strided', bindings: { 1: 'word', 2: 'word' } },
} satisfies Record<string, KernelRecord>;
