// The records of the element-wise kernels (shaders/dropout.wgsl, random.wgsl, copy.wgsl): dropout
// and its variants, the contract's raw draws, and the bench's copy. The runtime turns a record
// plus a call into chunked, vec4-wide dispatches.
import { type KernelRecord, read, write } from './record.js';
import type { ShaderName } from './shaders.js';

export type { BindingUnit, KernelRecord } from './record.js';

/**
 * A 'grid' kernel: its section of `files` defines `group` and `element`, which the grid-stride
 * `body` and the `tail` of shaders/grid.wgsl call. `rest` is the rest of the record (mask,
 * bindings, uniforms), checked where the records are declared.
 */
export function gridKernel<const R extends object>(name: string, files: readonly ShaderName[], section: string, rest: R) {
  return {
    name,
    shader: [...files, 'grid'] as readonly ShaderName[],
    section,
    entry: 'body',
    tail: 'tail',
    dispatch: 'grid',
    ...rest,
  } as const;
}

const x = read(1);
const out = write(2);
const dropoutFiles = ['philox', 'elementwise', 'data', 'input', 'dropout'] as const;
/** The in-place kernels read y itself (shaders/inplace.wgsl) and have no binding 1. */
const inPlaceFiles = ['philox', 'elementwise', 'data', 'inplace', 'dropout'] as const;
const randomFiles = ['philox', 'elementwise', 'random'] as const;
const words = { out: write(2, 'word') };
const bits = { out: write(2, 'bit') };

export const kernels = {
  dropoutForward: gridKernel('dropout.forward', dropoutFiles, 'forward', { mask: 'elementwise', bindings: { x, out }, uniforms: {} }),
  dropoutForwardInPlace: gridKernel('dropout.forward_inplace', inPlaceFiles, 'forward', {
    mask: 'elementwise',
    bindings: { out },
    uniforms: {},
  }),
  /** Forward plus the packed keep-mask in one pass. */
  dropoutForwardPacked: {
    name: 'dropout.forward_packed',
    shader: dropoutFiles,
    section: 'forward_packed',
    entry: 'forward_packed',
    tail: 'forward_packed_tail',
    dispatch: 'maskWord',
    mask: 'elementwise',
    bindings: { x, out, mask: write(3, 'bit') },
    uniforms: {},
  },
  dropoutMasked: gridKernel('dropout.masked', dropoutFiles, 'masked', {
    mask: 'packed',
    bindings: { x, out, mask: read(3, 'bit') },
    uniforms: {},
  }),
  dropoutMaskedInPlace: gridKernel('dropout.masked_inplace', inPlaceFiles, 'masked', {
    mask: 'packed',
    bindings: { out, mask: read(3, 'bit') },
    uniforms: {},
  }),
  identity: gridKernel('dropout.identity', dropoutFiles, 'identity', { mask: 'none', bindings: { x, out }, uniforms: {} }),
  zeros: gridKernel('dropout.zeros', dropoutFiles, 'zeros', { mask: 'none', bindings: { out }, uniforms: {} }),
  words: gridKernel('random.words', randomFiles, 'words', { mask: 'elementwise', bindings: words, uniforms: {} }),
  uniform: gridKernel('random.uniform', randomFiles, 'uniform01', { mask: 'elementwise', bindings: words, uniforms: {} }),
  normal: gridKernel('random.normal', randomFiles, 'normal', { mask: 'elementwise', bindings: words, uniforms: {} }),
  bernoulli: gridKernel('random.bernoulli', randomFiles, 'bernoulli', { mask: 'elementwise', bindings: words, uniforms: {} }),
  bernoulliFill: {
    name: 'random.fill',
    shader: randomFiles,
    section: 'fill',
    entry: 'fill',
    dispatch: 'element',
    mask: 'none',
    bindings: words,
    uniforms: {},
  },
  bernoulliPacked: {
    name: 'random.bernoulli_packed',
    shader: randomFiles,
    section: 'bernoulli_packed',
    entry: 'bernoulli_packed',
    dispatch: 'word',
    mask: 'elementwise',
    bindings: bits,
    uniforms: {},
  },
  bernoulliPackedFill: {
    name: 'random.fill_packed',
    shader: randomFiles,
    section: 'fill',
    entry: 'fill_packed',
    dispatch: 'word',
    mask: 'none',
    bindings: bits,
    uniforms: {},
  },
  /** The bench's roofline reference (no tail: whole vec4 groups only). */
  copy: {
    name: 'copy',
    shader: ['philox', 'elementwise', 'copy', 'grid'],
    entry: 'body',
    dispatch: 'grid',
    mask: 'none',
    bindings: { src: read(1, 'word'), dst: write(2, 'word') },
    uniforms: {},
  },
} as const satisfies Record<string, KernelRecord>;
