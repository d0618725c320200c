// The pipeline cache of one context: shader modules per file set and dtype, pipelines compiled
// asynchronously once per (record, dtype, constants, layout), the budget of specialized pipelines
// (ContextOptions.specializedShapes), and synchronous compiles for recordNow.
import { composeShader, type Dtype, type F16Path, type ModuleSource, moduleFiles } from '../kernels/shaders.js';

/** What a pipeline is compiled from: the record's files, section, entry point and uniforms (name labels it). */
export interface PipelineSource extends ModuleSource {
  readonly entry: string;
  readonly name: string;
}

/** A pipeline layout and the text naming it in cache keys. */
export interface LayoutRef {
  layout: GPUPipelineLayout;
  key: string;
}

export type Constants = Readonly<Record<string, number>>;
export const NO_CONSTANTS: Constants = Object.freeze({});

/** Constant sets with MISALIGNED added, one per variant object (see Dispatcher.prepare). */
const misalignedVariants = new WeakMap<object, Constants>();
export function misaligned(variant: Constants): Constants {
  let v = misalignedVariants.get(variant);
  if (!v) {
    v = Object.freeze({ ...variant, MISALIGNED: 1 });
    misalignedVariants.set(variant, v);
  }
  return v;
}

/** Cache-key text of kernel records and of frozen constant sets, built once each: pipeline
 * lookups happen on every call (a new object, like the model kit's `{}`, is simply keyed anew). */
const recordKeys = new WeakMap<object, string>();
const constantKeys = new WeakMap<object, string>();
function constantsKey(constants: Constants): string {
  let key = constantKeys.get(constants);
  if (key === undefined) {
    key = Object.keys(constants).length ? JSON.stringify(constants) : '';
    if (Object.isFrozen(constants)) constantKeys.set(constants, key);
  }
  return key;
}

/** A context's pipeline-cache key (its workgroup size is fixed, so it is left out). */
function pipelineKey(k: PipelineSource, dtype: Dtype, constants: Constants, layout?: { key: string }): string {
  let record = recordKeys.get(k);
  if (record === undefined) {
    record = `${moduleName(k)}:${k.entry}`;
    recordKeys.set(k, record);
  }
  return `${record}:${dtype}:${constantsKey(constants)}:${layout?.key ?? 'auto'}`;
}

/** The files and section a module is made of, naming it in cache keys. */
function moduleName(k: PipelineSource): string {
  const files = moduleFiles(k).join('+');
  return k.section === undefined ? files : `${files}#${k.section}`;
}

/** The entries of `constants` that the module's code declares as an override. */
function declaredOf(code: string, constants: Constants): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(constants)) {
    if (new RegExp(`\\boverride\\s+${name}\\b`).test(code)) out[name] = value;
  }
  return out;
}

export class Pipelines {
  /** Shader modules by files, section and dtype, with the launch constants each declares. */
  private readonly modules = new Map<string, { module: GPUShaderModule; launch: Constants }>();
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  /** Keys of the specializations granted so far (at most `budget`). */
  private readonly specializations = new Set<string>();
  /** Keys of the specialized pipelines asked for so far. */
  private readonly specializedKeys = new Set<string>();
  /** Pipelines whose compile has finished (or that `now` made), by key. */
  private readonly compiled = new Map<string, GPUComputePipeline>();
  /** Keys of the pipelines whose compile has finished, and of those whose compile failed. */
  private readonly ready = new Set<string>();
  private readonly failed = new Set<string>();
  /** Compiles in flight (each settles, never rejects). */
  private readonly compiles = new Set<Promise<void>>();

  /**
   * @param launchConstants the constants (WG and the tuning's) that every module declaring them gets
   * @param budget how many specializations may be granted (ContextOptions.specializedShapes)
   */
  constructor(
    private readonly device: GPUDevice,
    private readonly f16Path: F16Path,
    private readonly launchConstants: Constants,
    private readonly budget: number,
  ) {}

  /** The cached pipeline of one entry point for one dtype and set of constants, compiled asynchronously once. */
  get(k: PipelineSource, dtype: Dtype, constants: Constants = NO_CONSTANTS, layout?: LayoutRef): Promise<GPUComputePipeline> {
    const key = pipelineKey(k, dtype, constants, layout);
    return this.pipelines.get(key) ?? this.compile(key, k, dtype, constants, layout);
  }

  /** The pipeline `get` would give, made synchronously if no compile has finished yet. */
  now(k: PipelineSource, dtype: Dtype, constants: Constants, layout: LayoutRef): GPUComputePipeline {
    const key = pipelineKey(k, dtype, constants, layout);
    let pipeline = this.compiled.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline(this.descriptor(k, dtype, constants, layout));
      this.compiled.set(key, pipeline);
    }
    return pipeline;
  }

  /**
   * The pipeline with `specialized` constants compiled in (on top of `base`) if it is ready;
   * otherwise the generic one (`base` only), while the specialized one compiles in the background
   * for later calls. So a new shape never waits for a compile of its own (on lavapipe one takes
   * about 0.4 s), and repeated shapes get the faster kernel.
   */
  specializedOr(
    k: PipelineSource,
    dtype: Dtype,
    specialized: Constants | undefined,
    base: Constants,
    layout: LayoutRef,
  ): Promise<GPUComputePipeline> {
    const baseKey = pipelineKey(k, dtype, base, layout);
    const generic = () => this.pipelines.get(baseKey) ?? this.compile(baseKey, k, dtype, base, layout);
    if (specialized === undefined) return generic();
    const key = `${baseKey}+${constantsKey(specialized)}`;
    // A specialization that failed to compile is not tried again: the generic pipeline serves.
    if (this.failed.has(key)) return generic();
    this.specializedKeys.add(key);
    const p = this.pipelines.get(key) ?? this.compile(key, k, dtype, { ...specialized, ...base }, layout);
    return this.ready.has(key) ? p : generic();
  }

  /**
   * Whether a pipeline specialized for `key` may be used: yes if it was granted before, or if
   * fewer than the budget were (then it is granted now). Bounds the pipelines a stream of
   * ever-new shapes could compile.
   */
  claimSpecialization(key: string): boolean {
    if (this.specializations.has(key)) return true;
    if (this.specializations.size >= this.budget) return false;
    this.specializations.add(key);
    return true;
  }

  /** Specialized pipelines compiled and ready to use. */
  get specializedReady(): number {
    let n = 0;
    for (const key of this.specializedKeys) if (this.ready.has(key)) n++;
    return n;
  }

  /** Resolves once every compile started so far has finished, including background specializations. */
  async settled(): Promise<void> {
    while (this.compiles.size) await Promise.all([...this.compiles]);
  }

  /** Forgets every module and pipeline (device loss, destroy). */
  clear(): void {
    this.pipelines.clear();
    this.ready.clear();
    this.compiled.clear();
    this.modules.clear();
  }

  /** What a pipeline of `k` for `dtype` and these constants is made from (the module cached per files and dtype). */
  private descriptor(k: PipelineSource, dtype: Dtype, constants: Constants, layout?: LayoutRef): GPUComputePipelineDescriptor {
    const moduleKey = `${moduleName(k)}:${dtype}`;
    let m = this.modules.get(moduleKey);
    if (!m) {
      const code = composeShader(moduleFiles(k), dtype, this.f16Path, k.section);
      // The launch constants only where the module declares them: WebGPU rejects constants a module lacks (e.g. probe.wgsl).
      m = { module: this.device.createShaderModule({ label: moduleKey, code }), launch: declaredOf(code, this.launchConstants) };
      this.modules.set(moduleKey, m);
    }
    return {
      label: `${k.name}:${k.entry}:${dtype}`,
      layout: layout?.layout ?? 'auto',
      compute: { module: m.module, entryPoint: k.entry, constants: { ...constants, ...m.launch } },
    };
  }

  private compile(key: string, k: PipelineSource, dtype: Dtype, constants: Constants, layout?: LayoutRef): Promise<GPUComputePipeline> {
    const p = this.device.createComputePipelineAsync(this.descriptor(k, dtype, constants, layout));
    // A failed compile must not poison the cache forever.
    const settled = p.then(
      (pipeline) => {
        this.ready.add(key);
        this.compiled.set(key, pipeline);
      },
      () => {
        this.pipelines.delete(key);
        this.failed.add(key);
      },
    );
    this.compiles.add(settled);
    void settled.finally(() => this.compiles.delete(settled));
    this.pipelines.set(key, p);
    return p;
  }
}
