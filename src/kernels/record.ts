// The one record type of every kernel (element-wise, structured and the model kit's): its WGSL,
// entry points, named bindings, named typed uniforms, mask kind and dispatch shape. The runtime
// derives everything else from it (layouts, the uniform packer, the bindings of each chunk, the
// grid), so a record is the whole description of a kernel, and an incomplete one fails to
// type-check (records are written `satisfies Record<string, KernelRecord>`).
import type { ShaderName } from './shaders.js';

/** What a storage binding holds, which fixes its bytes per element. */
export type BindingUnit =
  | 'data' // one element of the call's dtype (f32: 4 bytes, f16: 2 bytes)
  | 'word' // one u32 or f32 per element
  | 'bit' // packed mask: one bit per element, 32 per u32
  | 'whole'; // the caller's whole buffer at offset 0 for every chunk (a bias indexed by column)

/** One storage binding: its number in WGSL, what it holds, and its WGSL access mode. */
export interface Binding {
  readonly binding: number;
  readonly unit: BindingUnit;
  readonly access: 'read' | 'read_write';
}

/** A uniform field's WGSL type (every field is one 4-byte word). */
export type UniformType = 'u32' | 'f32';

/** How a kernel's elements get their random words (docs/DESIGN.md sections 1 and 2). */
export type MaskKind =
  | 'none' // no random words (copies, fills, reductions, the dense layers)
  | 'elementwise' // element i of the call has mask index offset + i
  | 'packed' // keep decisions read from a packed 1-bit mask
  | 'broadcast'; // mask index through the broadcast table (aux uniform, binding 4), optionally from a mask table

/** How many invocations a dispatch gets. */
export type DispatchShape =
  | 'grid' // vec4 groups, grid-strided (shaders/grid.wgsl: 4 x groupsPerInvocation elements an invocation), plus, where the record names a tail, the count % 4 tail
  | 'maskWord' // the forward that also writes the packed mask (4 or 32 elements an invocation, by the tuning)
  | 'element' // one element an invocation
  | 'word' // one 32-element mask word an invocation
  | 'custom'; // the model kit's: one dispatch of the invocations the caller names, whole buffers, the record's uniform alone

/** Storage bindings by name, as call sites pass their buffers. */
export type Bindings = Readonly<Record<string, Binding>>;
/** Uniform fields by name, in WGSL declaration order. */
export type Uniforms = Readonly<Record<string, UniformType>>;

interface RecordBase<B extends Bindings, U extends Uniforms> {
  /** Label and cache-key prefix. */
  readonly name: string;
  /** Shader files, concatenated after the dtype prelude. */
  readonly shader: readonly ShaderName[];
  /** The kernel's `// ==== kernel` section of the files that have sections (see composeShader). */
  readonly section?: string;
  /** The entry point ('body' of shaders/grid.wgsl for the 'grid' kernels). */
  readonly entry: string;
  /** The entry point of the last count % 4 elements ('tail' of shaders/grid.wgsl). */
  readonly tail?: string;
  readonly bindings: B;
  /**
   * The kernel's own uniform fields. The element-wise kernels' Params (shaders/elementwise.wgsl)
   * ends in `op: Op`, a struct with these fields that the kernel's WGSL declares (an empty record
   * gets shaders/no_op.wgsl); a 'custom' kernel's uniform at binding 0 is a struct of exactly
   * these fields. The names and types match the WGSL struct (tests/records.test.ts checks).
   */
  readonly uniforms: U;
  readonly dispatch: DispatchShape;
}

/**
 * A kernel record. A 'broadcast' kernel also says what its optional mask table holds (the
 * words of the mask elements, or for Gaussian dropout their normals) and has a `table` binding.
 */
export type KernelRecord<B extends Bindings = Bindings, U extends Uniforms = Uniforms> = RecordBase<B, U> &
  ({ readonly mask: 'none' | 'elementwise' | 'packed' } | { readonly mask: 'broadcast'; readonly table: 'words' | 'normals' });

/** A read-only storage binding. */
export function read(binding: number, unit: BindingUnit = 'data'): Binding {
  return { binding, unit, access: 'read' };
}

/** A read_write storage binding. */
export function write(binding: number, unit: BindingUnit = 'data'): Binding {
  return { binding, unit, access: 'read_write' };
}

/** The buffers a call of `K` passes, by binding name. */
export type BuffersOf<K extends KernelRecord, T> = { readonly [N in keyof K['bindings']]: T };
/** The uniform values a call of `K` passes, by field name. */
export type UniformsOf<K extends KernelRecord> = { readonly [N in keyof K['uniforms']]: number };

/** A record's uniform fields as the packer writes them: words after `base`, floats marked. */
export interface UniformLayout {
  readonly names: readonly string[];
  readonly floats: readonly boolean[];
  /** Word index of the first field. */
  readonly base: number;
  /** Bytes of the whole uniform. */
  readonly bytes: number;
}

/** Words of Params before `op` (shaders/elementwise.wgsl: 13 words of header, `op` aligned to 16 bytes). */
const PARAMS_OP_WORD = 16;
const layouts = new WeakMap<KernelRecord, UniformLayout>();

/** The record's uniform layout, derived once per record. */
export function uniformLayout(k: KernelRecord): UniformLayout {
  let layout = layouts.get(k);
  if (!layout) {
    const names = Object.keys(k.uniforms);
    const floats = names.map((n) => k.uniforms[n] === 'f32');
    // A uniform struct is a multiple of 16 bytes; an empty Op still has its one placeholder word.
    const base = k.dispatch === 'custom' ? 0 : PARAMS_OP_WORD;
    const bytes = 4 * base + 16 * Math.max(1, Math.ceil(names.length / 4));
    layouts.set(k, (layout = { names, floats, base, bytes }));
  }
  return layout;
}

/** Writes `values` (by field name, missing ones 0) at word `w` + the layout's base of `u` / `f`. */
export function packUniforms(layout: UniformLayout, values: Readonly<Record<string, number>> | undefined, u: Uint32Array, f: Float32Array, w: number): void {
  const { names, floats, base } = layout;
  for (let i = 0; i < names.length; i++) {
    const v = values?.[names[i]!] ?? 0;
    if (floats[i]) f[w + base + i] = v;
    else u[w + base + i] = v;
  }
}
