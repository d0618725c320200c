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

/** A uniform field's WGSL type: a 4-byte word, or a 64-bit integer as vec2<u32> (lo, hi), whose
 * value is a bigint. */
export type UniformType = 'u32' | 'f32' | 'u64';

/** How a kernel's elements get their random words (docs/DESIGN.md sections 1 and 2). */
export type MaskKind =
  | 'none' // no random words (copies, fills, reductions, the dense layers)
  | 'elementwise' // element i of the call has mask index offset + i
  | 'packed' // keep decisions read from a packed 1-bit mask
  | 'broadcast'; // mask index through the broadcast table (uniform, binding 4), optionally read from a mask table

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
 * words of the mask elements, or for Gaussian dropout their normals) and has a `maskTable`
 * binding, which the runtime binds (the call's table, or a placeholder).
 */
export type KernelRecord<B extends Bindings = Bindings, U extends Uniforms = Uniforms> = RecordBase<B, U> &
  ({ readonly mask: 'none' | 'elementwise' | 'packed' } | { readonly mask: 'broadcast'; readonly maskTableHolds: 'words' | 'normals' });

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
/** The value of a uniform field of type `T`. */
export type UniformValue<T extends UniformType> = T extends 'u64' ? bigint : number;
/** The uniform values a call of `K` passes, by field name. */
export type UniformsOf<K extends KernelRecord> = { readonly [N in keyof K['uniforms']]: UniformValue<K['uniforms'][N]> };

/**
 * The header of every non-'custom' kernel's uniform, `struct Params` of shaders/elementwise.wgsl,
 * in declaration order: the runtime fills it for each chunk, and tests/records.test.ts checks the
 * WGSL struct against it. The kernel's own fields (`op`) follow at the next 16-byte boundary.
 */
export const PARAMS_HEADER = {
  seed: 'u64', // the Philox key
  stream: 'u64', // counter words 2 and 3
  group0: 'u64', // Philox counter of the group holding the dispatch's element 0
  offset: 'u64', // the call's mask offset, for kernels that map elements to mask indices
  lane0: 'u32', // lane of element 0 in that group: (offset + first) mod 4
  count: 'u32', // elements in this dispatch
  threshold: 'u32', // keep iff word >= threshold
  scale: 'f32', // multiplier of kept elements
  first: 'u32', // index of this dispatch's element 0 within the call (chunks start past 0)
} as const satisfies Uniforms;

/** Uniform fields as the packer writes them: each field's first word (from the uniform's start)
 * and kind. */
export interface UniformLayout {
  readonly names: readonly string[];
  readonly types: readonly UniformType[];
  readonly words: readonly number[];
  /** Bytes of the whole uniform (a multiple of 16). */
  readonly bytes: number;
}

/** Lays `fields` out from word `start` as WGSL does (a u64, vec2<u32>, aligned to 8 bytes). */
function layOut(fields: Uniforms, start: number): UniformLayout {
  const names = Object.keys(fields);
  const types = names.map((n) => fields[n]!);
  const words: number[] = [];
  let w = start;
  for (const t of types) {
    if (t === 'u64') w += w % 2;
    words.push(w);
    w += t === 'u64' ? 2 : 1;
  }
  // A uniform struct is a multiple of 16 bytes; an empty one still has its one placeholder word.
  return { names, types, words, bytes: 16 * Math.ceil(Math.max(w, start + 1) / 4) };
}

/** The Params header's layout. */
export const PARAMS_HEADER_LAYOUT = layOut(PARAMS_HEADER, 0);
/** Word of Params where the kernel's own fields (`op`, 16-byte aligned) start. */
export const PARAMS_OP_WORD = PARAMS_HEADER_LAYOUT.bytes / 4;
const layouts = new WeakMap<KernelRecord, UniformLayout>();

/** The layout of the record's own uniform fields, derived once per record: after the Params header,
 * or from word 0 for a 'custom' kernel (whose uniform is exactly its fields). */
export function uniformLayout(k: KernelRecord): UniformLayout {
  let layout = layouts.get(k);
  if (!layout) {
    layout = layOut(k.uniforms, k.dispatch === 'custom' ? 0 : PARAMS_OP_WORD);
    layouts.set(k, layout);
  }
  return layout;
}

/** Writes `values` (by field name, missing ones 0) into `u` / `f` at `layout`'s words after word `w`. */
export function packUniforms(
  layout: UniformLayout,
  values: Readonly<Record<string, number | bigint>> | undefined,
  u: Uint32Array,
  f: Float32Array,
  w: number,
): void {
  const { names, types, words } = layout;
  for (let i = 0; i < names.length; i++) {
    const v = values?.[names[i]!] ?? 0;
    const at = w + words[i]!;
    const type = types[i];
    if (type === 'f32') f[at] = Number(v);
    else if (type === 'u32') u[at] = Number(v);
    else {
      const b = BigInt(v);
      u[at] = Number(b & 0xffffffffn);
      u[at + 1] = Number((b >> 32n) & 0xffffffffn);
    }
  }
}
