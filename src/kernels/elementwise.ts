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
  /** The kernel's `// ==== kernel` section of the files that have sections (see composeShader). */
  readonly section?: string;
  /** Entry point over whole groups of `perInvocation` elements ('body' of shaders/grid.wgsl for
   * the vec4 kernels). */
  readonly entry: string;
  /** Scalar entry point for the last count % 4 elements' values ('tail' of shaders/grid.wgsl). */
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

/**
 * A vec4 kernel: its section of `files` defines `group` and `element`, which the grid-stride
 * `body` and the `tail` of shaders/grid.wgsl call.
 */
export function gridKernel(name: string, files: readonly ShaderName[], section: string, bindings: KernelRecord['bindings']): KernelRecord {
  return { name, shader: [...files, 'grid'], section, entry: 'body', tail: 'tail', perInvocation: 'strided', bindings };
}

const data = { 1: 'data', 2: 'data' } as const;
const dropoutFiles = ['philox', 'elementwise', 'data', 'input', 'dropout'] as const;
/** The in-place kernels read y itself (shaders/inplace.wgsl) with no binding 1. */
const inPlaceFiles = ['philox', 'elementwise', 'data', 'inplace', 'dropout'] as const;
const randomFiles = ['philox', 'elementwise', 'random'] as const;

export const kernels = {
  dropoutForward: gridKernel('dropout.forward', dropoutFiles, 'forward', data),
  dropoutForwardInPlace: gridKernel('dropout.forward_inplace', inPlaceFiles, 'forward', { 2: 'data' }),
  /** Forward plus the packed keep-mask in one pass. */
  dropoutForwardPacked: { name: 'dropout.forward_packed', shader: dropoutFiles, section: 'forward_packed', entry: 'forward_packed', tail: 'forward_packed_tail', perInvocation: 'maskWord', bindings: { ...data, 3: 'bit' }, writes: [2, 3] },
  dropoutMasked: gridKernel('dropout.masked', dropoutFiles, 'masked', { ...data, 3: 'bit' }),
  dropoutMaskedInPlace: gridKernel('dropout.masked_inplace', inPlaceFiles, 'masked', { 2: 'data', 3: 'bit' }),
  identity: gridKernel('dropout.identity', dropoutFiles, 'identity', data),
  zeros: gridKernel('dropout.zeros', dropoutFiles, 'zeros', { 2: 'data' }),
  words: gridKernel('random.words', randomFiles, 'words', { 2: 'word' }),
  uniform: gridKernel('random.uniform', randomFiles, 'uniform01', { 2: 'word' }),
  normal: gridKernel('random.normal', randomFiles, 'normal', { 2: 'word' }),
  bernoulli: gridKernel('random.bernoulli', randomFiles, 'bernoulli', { 2: 'word' }),
  bernoulliFill: { name: 'random.fill', shader: randomFiles, section: 'fill', entry: 'fill', perInvocation: 1, bindings: { 2: 'word' } },
  bernoulliPacked: { name: 'random.bernoulli_packed', shader: randomFiles, section: 'bernoulli_packed', entry: 'bernoulli_packed', perInvocation: 32, bindings: { 2: 'bit' } },
  bernoulliPackedFill: { name: 'random.fill_packed', shader: randomFiles, section: 'fill', entry: 'fill_packed', perInvocation: 32, bindings: { 2: 'bit' } },
  /** The bench's roofline reference (no tail: whole vec4 groups only). */
  copy: { name: 'copy', shader: ['philox', 'elementwise', 'copy', 'grid'], entry: 'body', perInvocation: 'strided', bindings: { 1: 'word', 2: 'word' } },
} satisfies Record<string, KernelRecord>;
