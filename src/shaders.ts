// The WGSL sources (shaders/*.wgsl, the single source for browser and Node), inlined by the
// bundler, and how a kernel's module is assembled from them.
import philox from '../shaders/philox.wgsl?raw';
import elementwise from '../shaders/elementwise.wgsl?raw';
import random from '../shaders/random.wgsl?raw';
import dropout from '../shaders/dropout.wgsl?raw';
import copy from '../shaders/copy.wgsl?raw';
import probe from '../shaders/probe.wgsl?raw';
import model from '../shaders/model.wgsl?raw';
import mc from '../shaders/mc.wgsl?raw';
import structured from '../shaders/structured.wgsl?raw';
import benchStages from '../shaders/bench_stages.wgsl?raw';

export const shaderSources = { model, mc, philox, elementwise, random, dropout, copy, probe, benchStages, structured } as const;
export type ShaderName = keyof typeof shaderSources;

/** Storage type of a kernel's data arrays; the shaders refer to it as `S`. */
export type Dtype = 'f32' | 'f16';

/** The dtype prelude (the alias `S`, and `enable f16` where needed) followed by the files in order. */
export function composeShader(files: readonly ShaderName[], dtype: Dtype): string {
  const prelude = dtype === 'f16' ? 'enable f16;\nalias S = f16;\n' : 'alias S = f32;\n';
  return prelude + files.map((f) => shaderSources[f]).join('\n');
}
