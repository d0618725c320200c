// The WGSL sources of the library's kernels (shaders/*.wgsl, the single source for browser and
// Node), inlined by the bundler, and how a kernel's module is assembled from them. The library
// build strips their comments, keeping the section markers (vite.lib.config.ts); files that not
// every use needs (the model kit's, src/model/kernels.ts) or that are not the library's (the
// benchmark's) are added with registerShader where they are used, so a bundle without them drops them.

import biasGrad from '../../shaders/bias_grad.wgsl?raw';
import copy from '../../shaders/copy.wgsl?raw';
import data from '../../shaders/data.wgsl?raw';
import dropout from '../../shaders/dropout.wgsl?raw';
import elementwise from '../../shaders/elementwise.wgsl?raw';
import f16Packed from '../../shaders/f16_packed.wgsl?raw';
import grid from '../../shaders/grid.wgsl?raw';
import inplace from '../../shaders/inplace.wgsl?raw';
import input from '../../shaders/input.wgsl?raw';
import nativeStorage from '../../shaders/native_storage.wgsl?raw';
import noOp from '../../shaders/no_op.wgsl?raw';
import philox from '../../shaders/philox.wgsl?raw';
import probe from '../../shaders/probe.wgsl?raw';
import random from '../../shaders/random.wgsl?raw';
import structured from '../../shaders/structured.wgsl?raw';

export const shaderSources = {
  philox,
  elementwise,
  grid,
  data,
  input,
  inplace,
  noOp,
  random,
  dropout,
  copy,
  probe,
  structured,
  biasGrad,
} as const;

declare const registered: unique symbol;
/** The name of a shader file added with registerShader. */
export type RegisteredShaderName = string & { readonly [registered]: true };
/** A shader file: one of shaderSources, or one added with registerShader. */
export type ShaderName = keyof typeof shaderSources | RegisteredShaderName;

/** Every shader file's text by name: shaderSources, then those registered. */
const sources = new Map<string, string>(Object.entries(shaderSources));

/**
 * Adds a shader file that records may name next to the library's own (the benchmark's kernels,
 * which stay out of the library's bundle). Registering the same name and text again is a no-op;
 * a name already taken by other text throws.
 */
export function registerShader(name: string, source: string): RegisteredShaderName {
  const taken = sources.get(name);
  if (taken !== undefined && taken !== source) throw new Error(`shader file '${name}' is already registered with other text`);
  sources.set(name, source);
  return name as RegisteredShaderName;
}

/** The text of a shader file. */
export function shaderSource(file: ShaderName): string {
  const source = sources.get(file);
  if (source === undefined) throw new Error(`no shader file '${file}' (a file outside shaderSources needs registerShader)`);
  return source;
}

/** Storage type of a kernel's data arrays; the shaders refer to it as `S`. */
export type Dtype = 'f32' | 'f16';

/**
 * How f16 data reaches the shaders: 'native' names it as `f16` (needs the `shader-f16` feature);
 * 'packed' binds it as u32 words, two halves each, converted in integer arithmetic (any adapter).
 */
export type F16Path = 'native' | 'packed';

/** A line `// ==== kernel <name>` starts a file's section <name>, which runs to the next one. */
const SECTION = /^\/\/ ==== kernel (\w+)[^\n]*\n/gm;

/** A file split at its section markers: the text before the first (shared by every section) and
 * each section's text. */
interface SplitFile {
  common: string;
  sections: ReadonlyMap<string, string>;
}

const splits = new Map<ShaderName, SplitFile>();
function split(file: ShaderName): SplitFile {
  let s = splits.get(file);
  if (!s) {
    const source = shaderSource(file);
    const marks = [...source.matchAll(SECTION)];
    const sections = new Map(marks.map((m, i) => [m[1]!, source.slice(m.index, marks[i + 1]?.index ?? source.length)]));
    s = { common: source.slice(0, marks[0]?.index ?? source.length), sections };
    splits.set(file, s);
  }
  return s;
}

/** The text of `file` a kernel in `section` compiles: the whole file, or for a file with sections
 * its common part plus that section (none of them where the file lacks it). */
function sourceOf(file: ShaderName, section: string | undefined): string {
  const s = split(file);
  if (s.sections.size === 0) return s.common;
  return s.common + (section === undefined ? '' : (s.sections.get(section) ?? ''));
}

/** What a kernel's module is made of: its record's files, section and uniform fields. */
export interface ModuleSource {
  readonly shader: readonly ShaderName[];
  readonly section?: string;
  readonly uniforms?: Readonly<Record<string, unknown>>;
}

/** The files of a kernel's module: the record's, plus shaders/no_op.wgsl where Params
 * (elementwise.wgsl) ends in the `op` of a kernel that declares no uniform fields. */
export function moduleFiles(k: ModuleSource): readonly ShaderName[] {
  const noOp = k.shader.includes('elementwise') && (!k.uniforms || Object.keys(k.uniforms).length === 0);
  return noOp ? [...k.shader, 'noOp'] : k.shader;
}

/** A line `// ==== storage <dtype>` starts native_storage.wgsl's section for that storage type. */
const STORAGE_SECTION = /^\/\/ ==== storage (\w+)[^\n]*\n/gm;

/** native_storage.wgsl for `dtype`: its common part and that dtype's section. */
const nativeStorageFor = (() => {
  const marks = [...nativeStorage.matchAll(STORAGE_SECTION)];
  const common = nativeStorage.slice(0, marks[0]?.index ?? nativeStorage.length);
  const sections = new Map(marks.map((m, i) => [m[1]!, nativeStorage.slice(m.index, marks[i + 1]?.index ?? nativeStorage.length)]));
  return (dtype: Dtype): string => common + (sections.get(dtype) ?? '');
})();

/**
 * The dtype prelude followed by the files in order (of a file with `// ==== kernel` sections, its
 * common part and `section`). Native storage (f32, or f16 with `enable f16`) defines the alias
 * `S`; every module also gets the storage interface the element-wise kernels use (S4, S1,
 * unpack_s4, pack_s4, cell_*): shaders/native_storage.wgsl (its common part and the dtype's
 * section, which converts f32 results to S), or for f16 on the packed path
 * shaders/f16_packed.wgsl (which defines no `S`, so a kernel not written against the interface
 * fails to compile rather than misread the data).
 */
export function composeShader(files: readonly ShaderName[], dtype: Dtype, f16Path: F16Path = 'native', section?: string): string {
  const prelude =
    dtype === 'f16'
      ? f16Path === 'packed'
        ? f16Packed
        : `enable f16;\nalias S = f16;\n${nativeStorageFor('f16')}`
      : `alias S = f32;\n${nativeStorageFor('f32')}`;
  return prelude + '\n' + files.map((f) => sourceOf(f, section)).join('\n');
}
