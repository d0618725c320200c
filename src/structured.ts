// Structured and variant dropout ops (docs/DESIGN.md section 2). One broadcast ("noise shape") rule
// serves them all: the mask has the input's shape with some dimensions set to 1, and element e
// uses the contract word of its linear index in that reduced shape (plus the call's offset).
// SpatialDropout, DropPath, variational dropout and DropConnect are noise shapes over it;
// Gaussian and Alpha dropout and the fused bias + dropout + residual add use it too.
import { checkCount, checkProbability, keepRule, toU64, type KeepRule } from './contract.js';
import { bindingBytes, dtypeBytes, runtimeOf, Usage, type BoundBuffer, type DispatchCall, type DropoutContext } from './context.js';
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import { gridKernel, kernels, type KernelRecord } from './kernels/elementwise.js';
import { checkEncoder, RANDOM_OPTION_NAMES, refundOnFailure, resolveCount, resolveRandom, withOptions, type RandomOptions, type RandomState, type RecordOptions } from './ops.js';
import { checkOptionNames, optionNames, type OptionNames } from './options.js';
import type { Dtype, ShaderName } from './kernels/shaders.js';

// ---------------------------------------------------------------------------------------------
// Shapes and the broadcast table

/** Most dimensions a shape may have (the size of the broadcast table in shaders/structured.wgsl). */
export const MAX_RANK = 8;

export type Shape = readonly number[];
/** A noise shape: per dimension the input's extent or 1; `null` means "the input's extent" (Keras' None). */
export type NoiseShape = readonly (number | null)[];

/** Checks a tensor shape: up to 8 non-negative integer extents whose product fits the contract's 2^32 - 1. */
export function checkShape(shape: unknown, argument = 'shape'): number[] {
  if (!Array.isArray(shape)) throw new InvalidArgumentError(argument, `an array of at most ${MAX_RANK} extents`, shape);
  if (shape.length > MAX_RANK) throw new InvalidArgumentError(argument, `at most ${MAX_RANK} dimensions`, shape);
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) throw new InvalidArgumentError(argument, 'non-negative integer extents', shape);
    count *= d as number;
  }
  if (count > 0xffffffff) throw new InvalidArgumentError(argument, 'at most 2^32 - 1 elements', shape);
  return [...(shape as number[])];
}

export function shapeSize(shape: Shape): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The noise shape in full: `undefined` is the input's shape (element-wise dropout); otherwise
 * each dimension must be the input's extent (or null) or 1, as Keras' noise_shape.
 */
export function resolveNoiseShape(shape: Shape, noiseShape: NoiseShape | undefined, argument = 'noiseShape'): number[] {
  if (noiseShape === undefined) return [...shape];
  if (!Array.isArray(noiseShape) || noiseShape.length !== shape.length) {
    throw new InvalidArgumentError(argument, `an array of ${shape.length} extents (the rank of shape [${shape.join(', ')}])`, noiseShape);
  }
  return noiseShape.map((d, k) => {
    if (d === null) return shape[k]!;
    if (d !== 1 && d !== shape[k]) {
      throw new InvalidArgumentError(argument, `a shape that broadcasts to [${shape.join(', ')}]: dimension ${k} must be ${shape[k]} or 1`, noiseShape);
    }
    return d;
  });
}

/**
 * The broadcast table the kernels read at binding 4 (struct Broadcast in shaders/structured.wgsl):
 * adjacent dimensions of the same kind (masked or broadcast) merged and extents of 1 dropped, so
 * the per-element index arithmetic runs over as few dimensions as possible; innermost first, each
 * (extent, mask stride) with stride 0 where the mask is broadcast.
 */
export function broadcastTable(shape: Shape, noiseShape: Shape): Uint32Array {
  const dims: [number, number][] = [];
  let maskStride = 1;
  let previous: 'masked' | 'broadcast' | null = null;
  for (let k = shape.length - 1; k >= 0; k--) {
    const extent = shape[k]!;
    if (extent === 1) continue;
    const kind = noiseShape[k] === 1 ? 'broadcast' : 'masked';
    if (kind === previous) dims[dims.length - 1]![0] *= extent;
    else dims.push([extent, kind === 'masked' ? maskStride : 0]);
    if (kind === 'masked') maskStride *= extent;
    previous = kind;
  }
  const table = new Uint32Array(4 + 4 * MAX_RANK);
  table[0] = dims.length;
  dims.forEach(([extent, stride], k) => table.set([extent, stride], 4 + 4 * k));
  return table;
}

// ---------------------------------------------------------------------------------------------
// Kernel records

const files: readonly ShaderName[] = ['philox', 'elementwise', 'data', 'structured'];

function vec4Kernel(name: string, section: string, bindings: KernelRecord['bindings']): KernelRecord {
  return gridKernel(name, files, section, bindings);
}

const data = { 1: 'data', 2: 'data' } as const;
/** The mask table (binding 6, shaders/structured.wgsl), bound whole for every chunk. */
const table = { 6: 'whole' } as const;

export const structuredKernels = {
  masked: vec4Kernel('structured.masked', 'masked', { ...data, ...table }),
  keepMask: vec4Kernel('structured.keep_mask', 'keep_mask', { 2: 'word', ...table }),
  residual: vec4Kernel('structured.residual', 'residual', { ...data, 3: 'data', ...table }),
  biasResidual: vec4Kernel('structured.bias_residual', 'bias_residual', { ...data, 3: 'data', 5: 'whole', ...table }),
  biasGradPartial: { name: 'structured.bias_grad_partial', shader: files, section: 'bias_grad', entry: 'bias_grad_partial', perInvocation: 1, bindings: { 1: 'whole', 2: 'word' } },
  biasGradFinal: { name: 'structured.bias_grad_final', shader: files, section: 'bias_grad', entry: 'bias_grad_final', perInvocation: 1, bindings: { 1: 'whole', 2: 'data' } },
  gaussian: vec4Kernel('structured.gaussian', 'gaussian', { ...data, ...table }),
  alpha: vec4Kernel('structured.alpha', 'alpha', { ...data, ...table }),
  alphaBackward: vec4Kernel('structured.alpha_backward', 'alpha_backward', { ...data, ...table }),
} satisfies Record<string, KernelRecord>;

/** The kernels that map elements to mask indices through the broadcast table (the bias-gradient
 * kernels read other words at binding 4) and read a mask table where TABLE is set. */
const maskIndexed: ReadonlySet<KernelRecord> = new Set([
  structuredKernels.masked,
  structuredKernels.keepMask,
  structuredKernels.residual,
  structuredKernels.biasResidual,
  structuredKernels.gaussian,
  structuredKernels.alpha,
  structuredKernels.alphaBackward,
]);

// ---------------------------------------------------------------------------------------------
// Options, state, shared validation and dispatch

export interface StructuredOptions extends RandomOptions, RecordOptions {
  /** Drop probability (the op's rate). */
  p: number;
  /** Shape of x. `structuredDropout` and the Gaussian and Alpha ops default to one dimension
   * holding the whole buffer; the ops with a mask layout of their own (spatial, drop-path,
   * variational, fused bias) and `structuredKeepMask` require it. */
  shape?: Shape;
  /** Mask shape: the input's with some dimensions 1 (default: the input's, element-wise). */
  noiseShape?: NoiseShape;
  dtype?: Dtype;
  /** Output buffer (default: a new pooled buffer). Must not be an input buffer. */
  out?: GPUBuffer;
  /** false: eval mode (no randomness). Default true. */
  training?: boolean;
}

/** The names every structured op shares; each op's list adds its own. */
const COMMON_OPTION_NAMES = { p: true, shape: true, dtype: true, out: true, training: true, ...RANDOM_OPTION_NAMES, encoder: true } as const;
const STRUCTURED_OPTIONS = optionNames<StructuredOptions>({ ...COMMON_OPTION_NAMES, noiseShape: true });

export type StructuredOp = 'dropout' | 'gaussian' | 'alpha' | 'bias-residual';

/** Everything a backward pass needs to regenerate the forward's mask; nothing else is kept. */
export interface StructuredState extends RandomState {
  op: StructuredOp;
  p: number;
  shape: number[];
  noiseShape: number[];
  dtype: Dtype;
  training: boolean;
  /** Multiplier of kept values: 1 / (1 - p), or 1 for DropPath without scale_by_keep. */
  scale: number;
}

export interface StructuredResult {
  output: GPUBuffer;
  state: StructuredState;
}

export interface BackwardOptions extends RecordOptions {
  /** Output buffer for the gradient (default: a new pooled buffer). Must not be dy. */
  out?: GPUBuffer;
}

const BACKWARD_OPTIONS = optionNames<BackwardOptions>({ out: true, encoder: true });

interface Prepared {
  shape: number[];
  noiseShape: number[];
  count: number;
  dtype: Dtype;
  bytes: number;
  table: Uint32Array;
}

/** Validates the common options (everything but p) and the input buffer; throws before any work. */
function prepare(ctx: DropoutContext, x: unknown, opts: StructuredOptions, xName: string, shapeRequired = false, outName = 'out'): Prepared {
  const dtype = opts.dtype ?? 'f32';
  ctx.checkDtype(dtype);
  checkEncoder(opts.encoder);
  if (shapeRequired && opts.shape === undefined) throw new InvalidArgumentError('shape', 'the shape of x');
  const shape = opts.shape !== undefined ? checkShape(opts.shape) : [resolveCount(undefined, x, dtypeBytes(dtype), xName)];
  const noiseShape = resolveNoiseShape(shape, opts.noiseShape);
  const count = shapeSize(shape);
  const bytes = bindingBytes('data', dtype, count);
  ctx.checkStorage(x, xName, bytes);
  if (opts.out !== undefined) {
    ctx.checkStorage(opts.out, outName, bytes);
    if (opts.out === x) throw new InvalidArgumentError(outName, `a buffer other than ${xName} (this op does not run in place)`);
  }
  const training = opts.training ?? true;
  if (typeof training !== 'boolean') throw new InvalidArgumentError('training', 'a boolean', training);
  return { shape, noiseShape, count, dtype, bytes, table: broadcastTable(shape, noiseShape) };
}

/** An options object, with only the names the op takes when `names` is given (entry points give it;
 * the shared steps after them see options the entry point has added to). */
function checkOptions(opts: unknown, needs: string, names?: OptionNames): asserts opts is object {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError('options', `an object with ${needs}`, opts);
  if (names) checkOptionNames(opts, names);
}

function randomFor(ctx: DropoutContext, opts: StructuredOptions, training: boolean): RandomState {
  // Eval mode draws no stream: it needs no randomness.
  return training ? resolveRandom(ctx, opts) : { seed: 0n, stream: 0n, offset: toU64(opts.offset ?? 0n, 'offset') };
}

function checkState(state: unknown, ops: readonly StructuredOp[]): asserts state is StructuredState {
  const s = state as StructuredState;
  if (typeof s !== 'object' || s === null || !ops.includes(s.op)) {
    throw new InvalidArgumentError('state', `the state returned by the forward op (${ops.join(' or ')})`, state);
  }
  checkProbability(s.p, 'state.p');
  toU64(s.seed, 'state.seed');
  toU64(s.stream, 'state.stream');
  toU64(s.offset, 'state.offset');
  checkShape(s.shape, 'state.shape');
  resolveNoiseShape(s.shape, s.noiseShape, 'state.noiseShape');
  if (s.dtype !== 'f32' && s.dtype !== 'f16') throw new InvalidArgumentError('state.dtype', "'f32' or 'f16'", s.dtype);
  if (typeof s.training !== 'boolean') throw new InvalidArgumentError('state.training', 'a boolean', s.training);
  if (typeof s.scale !== 'number' || !Number.isFinite(s.scale)) throw new InvalidArgumentError('state.scale', 'a finite number', s.scale);
}

/** The Prepared of a backward pass: the forward's shapes, checked against dy and out. */
function prepareBackward(ctx: DropoutContext, dy: unknown, state: StructuredState, opts: BackwardOptions, outName = 'out'): Prepared {
  checkOptions(opts, `${outName} or encoder`, BACKWARD_OPTIONS);
  return prepare(ctx, dy, { p: state.p, shape: state.shape, noiseShape: state.noiseShape, dtype: state.dtype, out: opts.out, encoder: opts.encoder }, 'dy', false, outName);
}

interface Launch {
  kernel: KernelRecord;
  buffers: Record<number, BoundBuffer>;
  rand?: RandomState;
  threshold?: number;
  scale?: number;
  extra?: number[];
  extraU?: number;
  /** Op-specific pipeline constants to compile in with the broadcast table (e.g. COLUMNS). */
  constants?: Record<string, number>;
  encoder?: GPUCommandEncoder;
}

/**
 * Pipeline constants that compile the call's shape into the kernel (shaders/structured.wgsl), if
 * the context grants one more specialization: the broadcast table (SPECIALIZED) for tables of
 * rank >= 2 (rank 1 is element-wise or a single decision, whose extent is the element count and
 * would cost a pipeline per tensor size; the outermost extent is left out, so batch sizes share a
 * pipeline), and the launch's own constants (the fused bias kernel's COLUMNS).
 */
function specialization(ctx: DropoutContext, l: Launch, prep: Prepared): Readonly<Record<string, number>> | undefined {
  if (!maskIndexed.has(l.kernel) || prep.count === 0) return undefined;
  const rank = prep.table[0]!;
  // The lookup key holds exactly what the constants would, so a call builds no object and no JSON
  // once its shape has been seen.
  let key = l.constants ? JSON.stringify(l.constants) : '';
  if (rank >= 2) for (let k = 0; k < rank; k++) key += `,${k + 1 < rank ? prep.table[4 + 4 * k] : ''}/${prep.table[5 + 4 * k]}`;
  let seen = specializationsSeen.get(ctx);
  if (!seen || seen.size >= SPECIALIZATIONS_SEEN) specializationsSeen.set(ctx, (seen = new Map()));
  let granted = seen.get(key);
  if (granted === undefined) {
    const constants: Record<string, number> = { ...l.constants };
    if (rank >= 2) {
      Object.assign(constants, { SPECIALIZED: 1, RANK: rank });
      for (let k = 0; k < rank; k++) {
        if (k + 1 < rank) constants[`EXTENT${k}`] = prep.table[4 + 4 * k]!;
        constants[`STRIDE${k}`] = prep.table[5 + 4 * k]!;
      }
    }
    // Frozen, so the context keys its pipelines by this object's JSON once (constantsKey).
    granted = Object.keys(constants).length && runtimeOf(ctx).pipelines.claimSpecialization(JSON.stringify(constants)) ? Object.freeze(constants) : null;
    seen.set(key, granted);
  }
  return granted ?? undefined;
}

/** Each context's specialization answers by lookup key (null: not granted, which stays so, since
 * grants are never taken back); forgotten past SPECIALIZATIONS_SEEN keys, so endless new shapes
 * cannot grow it. */
const specializationsSeen = new WeakMap<DropoutContext, Map<string, Readonly<Record<string, number>> | null>>();
const SPECIALIZATIONS_SEEN = 1024;
/** The variant of calls that read a mask table (frozen: see specialization). */
const READS_TABLE = Object.freeze({ TABLE: 1 });

/**
 * The kernel that writes the call's mask table (shaders/structured.wgsl, TABLE) and the table's
 * length (the mask's element count), where one pays
 * (ContextOptions.maskTables): a large enough call, a broadcast mask whose elements each serve
 * enough elements, and RNG work to save (threshold 0 keeps everything without it; Gaussian
 * dropout reads normals).
 */
function maskTable(ctx: DropoutContext, l: Launch, prep: Prepared): { kernel: KernelRecord; count: number } | undefined {
  if (!maskIndexed.has(l.kernel) || l.rand === undefined || prep.count === 0) return undefined;
  const gaussian = l.kernel === structuredKernels.gaussian;
  if (!gaussian && !l.threshold) return undefined;
  const maskCount = shapeSize(prep.noiseShape);
  const { minElements, minReuse } = ctx.maskTables;
  if (maskCount === prep.count || prep.count < minElements || maskCount * minReuse > prep.count) return undefined;
  if (maskCount * 4 > Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize)) return undefined;
  return { kernel: gaussian ? kernels.normal : kernels.words, count: maskCount };
}

/** A 16-byte buffer bound as the mask table of calls that use none (the binding is declared anyway). */
const placeholders = new WeakMap<DropoutContext, GPUBuffer>();
function placeholder(ctx: DropoutContext): BoundBuffer {
  let buffer = placeholders.get(ctx);
  if (!buffer) placeholders.set(ctx, (buffer = ctx.device.createBuffer({ label: 'webgpu-dropout no mask table', size: 16, usage: Usage.STORAGE })));
  return { buffer, argument: 'mask table' };
}

async function launch(ctx: DropoutContext, prep: Prepared, l: Launch): Promise<void> {
  const mask = maskTable(ctx, l, prep);
  const table = mask && { buffer: ctx.acquire(mask.count * 4, 'mask table'), argument: 'mask table' };
  // This module's broadcast kernels declare a mask-table binding, bound to a placeholder when the
  // call uses no table; the core kernels must not be given one.
  const tableBinding = table ?? (maskIndexed.has(l.kernel) ? placeholder(ctx) : undefined);
  const call: DispatchCall = {
    kernel: l.kernel,
    dtype: prep.dtype,
    count: prep.count,
    buffers: tableBinding ? Object.assign({}, l.buffers, { 6: tableBinding }) : l.buffers,
    seed: l.rand?.seed,
    stream: l.rand?.stream,
    offset: l.rand?.offset,
    threshold: l.threshold,
    scale: l.scale,
    extra: l.extra,
    extraU: l.extraU,
    // Only this module's kernels declare the broadcast table; the core ones must not be given it.
    aux: l.kernel.shader.includes('structured') ? prep.table : undefined,
    constants: specialization(ctx, l, prep),
    variant: table ? READS_TABLE : undefined,
    encoder: l.encoder,
  };
  if (!mask || !table) return ctx.dispatch(call);
  // Recorded back to back, the table's writer first, into one encoder (one submission); refused,
  // nothing of it was recorded and the table goes back as if never taken.
  await refundOnFailure(ctx, [table.buffer], () =>
    ctx.dispatchAll([
      { kernel: mask.kernel, dtype: 'f32', count: mask.count, buffers: { 2: table }, seed: l.rand!.seed, stream: l.rand!.stream, offset: l.rand!.offset, encoder: l.encoder },
      call,
    ]),
  );
  ctx.retire(table.buffer, l.encoder);
}

/** A copy of `from` into `out` (the core identity kernel): eval modes that must still write `out`. */
function copyInto(ctx: DropoutContext, prep: Prepared, from: BoundBuffer, out: GPUBuffer, encoder?: GPUCommandEncoder): Promise<void> {
  return launch(ctx, prep, { kernel: kernels.identity, buffers: { 1: from, 2: { buffer: out, argument: 'out' } }, encoder });
}

/** y = keep ? x * scale : 0 under `rule`, or x itself when nothing is to be done and no `out` is given. */
async function applyMask(
  ctx: DropoutContext,
  prep: Prepared,
  input: BoundBuffer,
  out: GPUBuffer | undefined,
  rule: KeepRule,
  rand: RandomState,
  scale: number,
  encoder: GPUCommandEncoder | undefined,
): Promise<GPUBuffer> {
  if (rule.kind === 'identity' && out === undefined) return input.buffer;
  const output = out ?? ctx.acquire(prep.bytes, 'structured dropout output');
  const target = { buffer: output, argument: 'out' };
  await refundOnFailure(ctx, [out === undefined ? output : undefined], async () => {
    if (rule.kind === 'identity') await copyInto(ctx, prep, input, output, encoder);
    else if (rule.kind === 'zeros') await launch(ctx, prep, { kernel: kernels.zeros, buffers: { 2: target }, encoder });
    else await launch(ctx, prep, { kernel: structuredKernels.masked, buffers: { 1: input, 2: target }, rand, threshold: rule.threshold, scale, encoder });
  });
  return output;
}

// ---------------------------------------------------------------------------------------------
// Dropout with a noise shape, and the structured ops built on it

export interface StructuredDropoutOptions extends StructuredOptions {
  /** Scale kept values by 1 / (1 - p) (default true; timm's scale_by_keep=False sets it false). */
  scaleByKeep?: boolean;
}

const STRUCTURED_DROPOUT_OPTIONS = optionNames<StructuredDropoutOptions>({ ...COMMON_OPTION_NAMES, noiseShape: true, scaleByKeep: true });

/** Checks the arguments (`checkMore` for an op's own, given the prepared call) and only then takes
 * a stream, so that a rejected call leaves the generator where it was. */
function dropoutState(
  ctx: DropoutContext,
  x: unknown,
  opts: StructuredDropoutOptions,
  xName: string,
  checkMore: (prep: Prepared) => void = () => {},
): { prep: Prepared; rule: KeepRule; state: StructuredState } {
  checkOptions(opts, 'at least p');
  const rule = keepRule(opts.p);
  const prep = prepare(ctx, x, opts, xName);
  const scaleByKeep = opts.scaleByKeep ?? true;
  if (typeof scaleByKeep !== 'boolean') throw new InvalidArgumentError('scaleByKeep', 'a boolean', scaleByKeep);
  checkMore(prep);
  const training = opts.training ?? true;
  const rand = randomFor(ctx, opts, training);
  const scale = scaleByKeep && rule.kind === 'mask' ? rule.scale : 1;
  const state: StructuredState = { op: 'dropout', ...rand, p: opts.p, shape: prep.shape, noiseShape: prep.noiseShape, dtype: prep.dtype, training, scale };
  return { prep, rule: training ? rule : { kind: 'identity' }, state };
}

/**
 * Dropout with a broadcast mask (Keras `Dropout(noise_shape=...)`, `tf.dropout(x, rate, noiseShape)`):
 * y = keep ? x / (1 - p) : 0, one decision per element of the noise shape. With no noise shape it
 * is element-wise dropout, word for word the same as `dropout()`.
 */
export async function structuredDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredDropoutOptions): Promise<StructuredResult> {
  checkOptions(opts, 'at least p', STRUCTURED_DROPOUT_OPTIONS);
  return maskedDropout(ctx, x, opts);
}

/** structuredDropout after its entry point's checks (the ops built on it add a noise shape). */
async function maskedDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredDropoutOptions): Promise<StructuredResult> {
  ctx.checkAlive();
  const { prep, rule, state } = dropoutState(ctx, x, opts, 'x');
  const output = await applyMask(ctx, prep, { buffer: x, argument: 'x' }, opts.out, rule, state, state.scale, opts.encoder);
  return { output, state };
}

/** dx = keep ? dy * scale : 0 with the forward's mask, regenerated from its state (structured
 * dropout, SpatialDropout, DropPath, variational dropout, DropConnect, fused bias + dropout + residual). */
export async function structuredDropoutBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
  ctx.checkAlive();
  checkState(state, ['dropout', 'bias-residual']);
  const prep = prepareBackward(ctx, dy, state, opts);
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  return applyMask(ctx, prep, { buffer: dy, argument: 'dy' }, opts.out, rule, state, state.scale, opts.encoder);
}

export type ChannelLayout = 'channels-first' | 'channels-last';

export interface ChannelOptions {
  /** 'channels-first' (N, C, ...), as PyTorch's Dropout1d/2d/3d, or 'channels-last' (N, ..., C), as Keras. */
  layout?: ChannelLayout;
  /** Or the channel axis itself (negative counts from the end; axis 0 is the batch). */
  channelAxis?: number;
}

/** The channel axis of a shape of rank `rank` under a layout or an explicit axis. */
export function channelAxisFor(rank: number, opts: ChannelOptions): number {
  if (rank < 2) throw new InvalidArgumentError('shape', 'at least 2 dimensions (N, C, ...) or (N, ..., C)', rank);
  const { layout, channelAxis } = opts;
  if (layout !== undefined && layout !== 'channels-first' && layout !== 'channels-last') {
    throw new InvalidArgumentError('layout', "'channels-first' or 'channels-last'", layout);
  }
  const fromLayout = layout === undefined ? undefined : layout === 'channels-first' ? 1 : rank - 1;
  if (channelAxis === undefined) {
    if (fromLayout === undefined) throw new InvalidArgumentError('layout', "'channels-first' or 'channels-last' (or a channelAxis)");
    return fromLayout;
  }
  if (!Number.isInteger(channelAxis) || channelAxis === 0 || channelAxis >= rank || channelAxis < -(rank - 1)) {
    throw new InvalidArgumentError('channelAxis', `an integer in 1..${rank - 1} or -${rank - 1}..-1 (axis 0 is the batch)`, channelAxis);
  }
  const axis = channelAxis < 0 ? rank + channelAxis : channelAxis;
  if (fromLayout !== undefined && fromLayout !== axis) {
    throw new InvalidArgumentError('channelAxis', `the axis of layout '${layout}' (${fromLayout}) when both are given`, channelAxis);
  }
  return axis;
}

/** SpatialDropout's noise shape: the batch and channel extents, 1 elsewhere (N x C decisions). */
export function spatialNoiseShape(shape: Shape, opts: ChannelOptions): number[] {
  const s = checkShape(shape);
  const axis = channelAxisFor(s.length, opts);
  return s.map((d, k) => (k === 0 || k === axis ? d : 1));
}

/** DropPath's noise shape: (N, 1, ..., 1), one decision per sample. */
export function dropPathNoiseShape(shape: Shape): number[] {
  const s = checkShape(shape);
  if (s.length < 1) throw new InvalidArgumentError('shape', 'at least 1 dimension (the batch)', shape);
  return s.map((d, k) => (k === 0 ? d : 1));
}

/** Variational (locked) dropout's noise shape: the time axis set to 1, e.g. (N, 1, F) for (N, T, F). */
export function variationalNoiseShape(shape: Shape, timeAxis = 1): number[] {
  const s = checkShape(shape);
  if (!Number.isInteger(timeAxis) || timeAxis < 0 || timeAxis >= s.length) {
    throw new InvalidArgumentError('timeAxis', `an integer in 0..${s.length - 1}`, timeAxis);
  }
  return s.map((d, k) => (k === timeAxis ? 1 : d));
}

function requireShape(opts: { shape?: Shape }): Shape {
  if (opts.shape === undefined) throw new InvalidArgumentError('shape', 'the shape of x');
  return opts.shape;
}

export interface SpatialDropoutOptions extends Omit<StructuredOptions, 'noiseShape'>, ChannelOptions {
  shape: Shape;
}

const SPATIAL_OPTIONS = optionNames<SpatialDropoutOptions>({ ...COMMON_OPTION_NAMES, layout: true, channelAxis: true });

/**
 * SpatialDropout1D/2D/3D (Keras) and Dropout1d/2d/3d (PyTorch): whole channels dropped, one
 * decision per (sample, channel). Backward: structuredDropoutBackward.
 */
export async function spatialDropout(ctx: DropoutContext, x: GPUBuffer, opts: SpatialDropoutOptions): Promise<StructuredResult> {
  checkOptions(opts, 'p, shape and layout', SPATIAL_OPTIONS);
  checkProbability(opts.p);
  return maskedDropout(ctx, x, withOptions(opts, { noiseShape: spatialNoiseShape(requireShape(opts), opts) }));
}

export interface DropPathOptions extends Omit<StructuredOptions, 'noiseShape'> {
  shape: Shape;
  /** Divide kept samples by 1 - p (timm's scale_by_keep, default true). */
  scaleByKeep?: boolean;
}

const DROP_PATH_OPTIONS = optionNames<DropPathOptions>({ ...COMMON_OPTION_NAMES, scaleByKeep: true });

/** DropPath / stochastic depth (timm `drop_path`): each sample's branch kept or zeroed whole.
 * Backward: structuredDropoutBackward. */
export async function dropPath(ctx: DropoutContext, x: GPUBuffer, opts: DropPathOptions): Promise<StructuredResult> {
  checkOptions(opts, 'p and shape', DROP_PATH_OPTIONS);
  checkProbability(opts.p);
  return maskedDropout(ctx, x, withOptions(opts, { noiseShape: dropPathNoiseShape(requireShape(opts)) }));
}

/**
 * The fused residual form of DropPath, out = residual + drop_path(branch), in one pass:
 * out = residual + branch * keep / (1 - p) (or * keep without scaleByKeep).
 * Backward: dropPathAddBackward (d residual = dy, d branch = structuredDropoutBackward).
 */
export async function dropPathAdd(ctx: DropoutContext, residual: GPUBuffer, branch: GPUBuffer, opts: DropPathOptions): Promise<StructuredResult> {
  ctx.checkAlive();
  checkOptions(opts, 'p and shape', DROP_PATH_OPTIONS);
  checkProbability(opts.p);
  const full = withOptions(opts, { noiseShape: dropPathNoiseShape(requireShape(opts)) });
  const { prep, rule, state } = dropoutState(ctx, branch, full, 'branch', (p) => {
    ctx.checkStorage(residual, 'residual', p.bytes);
    if (residual === branch) throw new InvalidArgumentError('residual', 'a buffer other than branch');
    if (opts.out === residual) throw new InvalidArgumentError('out', 'a buffer other than residual (this op does not run in place)');
  });
  const output = opts.out ?? ctx.acquire(prep.bytes, 'dropPathAdd output');
  const bound = { 1: { buffer: branch, argument: 'branch' }, 2: { buffer: output, argument: 'out' }, 3: { buffer: residual, argument: 'residual' } };
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], async () => {
    if (rule.kind === 'zeros') await copyInto(ctx, prep, bound[3], output, opts.encoder);
    else if (rule.kind === 'identity') await launch(ctx, prep, { kernel: structuredKernels.residual, buffers: bound, threshold: 0, scale: 1, encoder: opts.encoder });
    else await launch(ctx, prep, { kernel: structuredKernels.residual, buffers: bound, rand: state, threshold: rule.threshold, scale: state.scale, encoder: opts.encoder });
  });
  return { output, state };
}

/** Gradients of dropPathAdd: d residual is dy itself (the same buffer), d branch regenerates the mask. */
export async function dropPathAddBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<{ dresidual: GPUBuffer; dbranch: GPUBuffer }> {
  const dbranch = await structuredDropoutBackward(ctx, dy, state, opts);
  return { dresidual: dy, dbranch };
}

/** timm's per-block stochastic-depth rates: rate_i = rate * i / (depth - 1), i = 0 .. depth-1
 * (torch.linspace(0, rate, depth); a single block gets 0). */
export function dropPathRates(rate: number, depth: number): number[] {
  checkProbability(rate, 'rate');
  if (!Number.isSafeInteger(depth) || depth < 1) throw new InvalidArgumentError('depth', 'a positive integer', depth);
  if (depth === 1) return [0];
  // The last block gets `rate` exactly (rate * i / (depth - 1) can overshoot it by an ulp).
  return Array.from({ length: depth }, (_, i) => (i === depth - 1 ? rate : (rate * i) / (depth - 1)));
}

export interface VariationalDropoutOptions extends Omit<StructuredOptions, 'noiseShape'> {
  shape: Shape;
  /** The axis that shares one mask (default 1: (N, T, F); 0 for time-major (T, N, F), as AWD-LSTM's LockedDropout). */
  timeAxis?: number;
}

const VARIATIONAL_OPTIONS = optionNames<VariationalDropoutOptions>({ ...COMMON_OPTION_NAMES, timeAxis: true });

/** Variational (locked) dropout for sequences: the same mask for every time step.
 * Backward: structuredDropoutBackward. */
export async function variationalDropout(ctx: DropoutContext, x: GPUBuffer, opts: VariationalDropoutOptions): Promise<StructuredResult> {
  checkOptions(opts, 'p and shape', VARIATIONAL_OPTIONS);
  checkProbability(opts.p);
  return maskedDropout(ctx, x, withOptions(opts, { noiseShape: variationalNoiseShape(requireShape(opts), opts.timeAxis ?? 1) }));
}

export interface DropConnectOptions extends Omit<StructuredOptions, 'shape'> {
  rows: number;
  cols: number;
}

const DROP_CONNECT_OPTIONS = optionNames<DropConnectOptions>({
  p: true, rows: true, cols: true, noiseShape: true, dtype: true, out: true, training: true, ...RANDOM_OPTION_NAMES, encoder: true,
});

/**
 * DropConnect (Wan et al. 2013; torchnlp/AWD-LSTM WeightDrop): dropout on a (rows, cols) weight
 * matrix, a fresh mask per call (the next stream), returning the masked weight for the caller's
 * matmul. Backward: dropConnectBackward turns d(masked weight) into dW.
 */
export async function dropConnect(ctx: DropoutContext, weight: GPUBuffer, opts: DropConnectOptions): Promise<StructuredResult> {
  ctx.checkAlive();
  checkOptions(opts, 'p, rows and cols', DROP_CONNECT_OPTIONS);
  checkProbability(opts.p);
  checkCount(opts.rows, 'rows');
  checkCount(opts.cols, 'cols');
  const { prep, rule, state } = dropoutState(ctx, weight, withOptions(opts, { shape: [opts.rows, opts.cols] }), 'weight');
  const output = await applyMask(ctx, prep, { buffer: weight, argument: 'weight' }, opts.out, rule, state, state.scale, opts.encoder);
  return { output, state };
}

/** dW = d(masked weight) * keep / (1 - p) with the forward's mask. */
export async function dropConnectBackward(ctx: DropoutContext, dMaskedWeight: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
  return structuredDropoutBackward(ctx, dMaskedWeight, state, opts);
}

export interface KeepMaskOptions extends Omit<StructuredOptions, 'dtype' | 'training'> {}

const KEEP_MASK_OPTIONS = optionNames<KeepMaskOptions>({ p: true, shape: true, noiseShape: true, out: true, ...RANDOM_OPTION_NAMES, encoder: true });

/** The broadcast keep-mask itself, one u32 per element of x's shape (1 = keep): what every op
 * here decides for the same (p, shape, noiseShape, seed, stream, offset). */
export async function structuredKeepMask(ctx: DropoutContext, opts: KeepMaskOptions): Promise<{ output: GPUBuffer; state: StructuredState }> {
  ctx.checkAlive();
  checkOptions(opts, 'p and shape', KEEP_MASK_OPTIONS);
  const rule = keepRule(opts.p);
  checkEncoder(opts.encoder);
  const shape = checkShape(requireShape(opts));
  const noiseShape = resolveNoiseShape(shape, opts.noiseShape);
  const count = shapeSize(shape);
  const bytes = bindingBytes('word', 'f32', count);
  if (opts.out !== undefined) ctx.checkStorage(opts.out, 'out', bytes);
  else ctx.checkBufferSize(bytes, 'shape', shape, 'the output buffer (a u32 per element)');
  const rand = resolveRandom(ctx, opts);
  const prep: Prepared = { shape, noiseShape, count, dtype: 'f32', bytes, table: broadcastTable(shape, noiseShape) };
  const output = opts.out ?? ctx.acquire(bytes, 'structured keep mask');
  const out = { 2: { buffer: output, argument: 'out' } };
  // threshold 0 keeps all; bernoulliFill writes 0 for any other threshold (p = 1).
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () =>
    rule.kind === 'zeros'
      ? launch(ctx, prep, { kernel: kernels.bernoulliFill, buffers: out, threshold: 1, encoder: opts.encoder })
      : launch(ctx, prep, { kernel: structuredKernels.keepMask, buffers: out, rand, threshold: rule.kind === 'mask' ? rule.threshold : 0, encoder: opts.encoder }),
  );
  const scale = rule.kind === 'mask' ? rule.scale : 1;
  return { output, state: { op: 'dropout', ...rand, p: opts.p, shape, noiseShape, dtype: 'f32', training: true, scale } };
}

// ---------------------------------------------------------------------------------------------
// Gaussian dropout

/** p in [0, 1): the rates Gaussian and Alpha dropout are defined for. */
function checkOpenRate(p: number, argument = 'p'): KeepRule {
  checkProbability(p, argument);
  const rule = keepRule(p);
  if (rule.kind === 'zeros') throw new InvalidArgumentError(argument, 'a number in [0, 1) (p = 1 leaves no signal to rescale)', p);
  return rule;
}

/** sigma = sqrt(p / (1 - p)): the noise's standard deviation, so the variance matches dropout's. */
export function gaussianSigma(p: number): number {
  checkOpenRate(p);
  return Math.sqrt(p / (1 - p));
}

/** Validates a forward of an op whose rate must be below 1 (Gaussian, Alpha) and draws its stream. */
function beginOpenRateOp(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions, op: 'gaussian' | 'alpha') {
  ctx.checkAlive();
  checkOptions(opts, 'at least p', STRUCTURED_OPTIONS);
  const rule = checkOpenRate(opts.p);
  const prep = prepare(ctx, x, opts, 'x');
  const training = opts.training ?? true;
  const rand = randomFor(ctx, opts, training);
  const state: StructuredState = { op, ...rand, p: opts.p, shape: prep.shape, noiseShape: prep.noiseShape, dtype: prep.dtype, training, scale: 1 };
  return { rule, prep, training, state };
}

/** Validates the backward of a Gaussian or Alpha forward; the rule is the identity in eval mode. */
function beginOpenRateBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions, op: 'gaussian' | 'alpha') {
  ctx.checkAlive();
  checkState(state, [op]);
  const rule = checkOpenRate(state.p, 'state.p');
  const prep = prepareBackward(ctx, dy, state, opts);
  return { rule: state.training ? rule : ({ kind: 'identity' } as KeepRule), prep, input: { buffer: dy, argument: 'dy' } };
}

/**
 * Gaussian dropout (Keras `GaussianDropout`, Srivastava et al. 2014): y = x * (1 + sigma z), z the
 * contract's standard normal of the element's mask index (Box-Muller on word pairs).
 */
export async function gaussianDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions): Promise<StructuredResult> {
  const { rule, prep, training, state } = beginOpenRateOp(ctx, x, opts, 'gaussian');
  const output = await applyGaussian(ctx, prep, { buffer: x, argument: 'x' }, opts.out, training ? rule : { kind: 'identity' }, state, opts.encoder);
  return { output, state };
}

/** dx = dy * (1 + sigma z) with the forward's z, regenerated. */
export async function gaussianDropoutBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
  const { rule, prep, input } = beginOpenRateBackward(ctx, dy, state, opts, 'gaussian');
  return applyGaussian(ctx, prep, input, opts.out, rule, state, opts.encoder);
}

async function applyGaussian(ctx: DropoutContext, prep: Prepared, input: BoundBuffer, out: GPUBuffer | undefined, rule: KeepRule, state: StructuredState, encoder?: GPUCommandEncoder): Promise<GPUBuffer> {
  if (rule.kind !== 'mask') return applyMask(ctx, prep, input, out, rule, state, 1, encoder);
  const output = out ?? ctx.acquire(prep.bytes, 'gaussian dropout output');
  const l: Launch = { kernel: structuredKernels.gaussian, buffers: { 1: input, 2: { buffer: output, argument: 'out' } }, rand: state, extra: [gaussianSigma(state.p)], encoder };
  await refundOnFailure(ctx, [out === undefined ? output : undefined], () => launch(ctx, prep, l));
  return output;
}

// ---------------------------------------------------------------------------------------------
// Alpha dropout

/** SELU's constants (Klambauer et al. 2017). */
export const SELU_LAMBDA = 1.0507009873554805;
export const SELU_ALPHA = 1.6732632423543772;

/**
 * Keras AlphaDropout's coefficients for rate p, keep probability q = 1 - p: dropped units take
 * alpha' = -lambda alpha, then y = a x + b with a = (q + alpha'^2 q p)^-1/2 and b = -a alpha' p,
 * which keeps zero mean and unit variance.
 */
export function alphaDropoutCoefficients(p: number): { a: number; b: number; alphaPrime: number } {
  checkOpenRate(p);
  const alphaPrime = -SELU_LAMBDA * SELU_ALPHA;
  const q = 1 - p;
  const a = (q + alphaPrime * alphaPrime * q * p) ** -0.5;
  return { a, b: -a * alphaPrime * p, alphaPrime };
}

/** Alpha dropout for SELU networks (Keras `AlphaDropout`, PyTorch `nn.AlphaDropout`):
 * y = a (keep ? x : alpha') + b. */
export async function alphaDropout(ctx: DropoutContext, x: GPUBuffer, opts: StructuredOptions): Promise<StructuredResult> {
  const { rule, prep, training, state } = beginOpenRateOp(ctx, x, opts, 'alpha');
  const input = { buffer: x, argument: 'x' };
  if (!training || rule.kind !== 'mask') return { output: await applyMask(ctx, prep, input, opts.out, { kind: 'identity' }, state, 1, opts.encoder), state };
  const { a, b, alphaPrime } = alphaDropoutCoefficients(opts.p);
  const output = opts.out ?? ctx.acquire(prep.bytes, 'alpha dropout output');
  const buffers = { 1: input, 2: { buffer: output, argument: 'out' } };
  const l: Launch = { kernel: structuredKernels.alpha, buffers, rand: state, threshold: rule.threshold, extra: [a, b, alphaPrime], encoder: opts.encoder };
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () => launch(ctx, prep, l));
  return { output, state };
}

/** dx = keep ? dy * a : 0 with the forward's mask, regenerated. */
export async function alphaDropoutBackward(ctx: DropoutContext, dy: GPUBuffer, state: StructuredState, opts: BackwardOptions = {}): Promise<GPUBuffer> {
  const { rule, prep, input } = beginOpenRateBackward(ctx, dy, state, opts, 'alpha');
  if (rule.kind !== 'mask') return applyMask(ctx, prep, input, opts.out, { kind: 'identity' }, state, 1, opts.encoder);
  const output = opts.out ?? ctx.acquire(prep.bytes, 'alpha dropout grad');
  const { a } = alphaDropoutCoefficients(state.p);
  const l: Launch = { kernel: structuredKernels.alphaBackward, buffers: { 1: input, 2: { buffer: output, argument: 'out' } }, rand: state, threshold: rule.threshold, extra: [a], encoder: opts.encoder };
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () => launch(ctx, prep, l));
  return output;
}

// ---------------------------------------------------------------------------------------------
// Fused bias + dropout + residual add

export interface BiasDropoutResidualOptions extends StructuredOptions {
  /** Shape of x and residual, (..., C); bias holds C elements. */
  shape: Shape;
}

/** Rows per block of the first bias-gradient stage. */
const BIAS_GRAD_BLOCK_ROWS = 128;

/**
 * out = residual + dropout(x + bias) in one pass (the transformer block pattern; Megatron's
 * bias_dropout_add), f32 or f16 with f32 arithmetic. In eval mode: out = residual + x + bias.
 */
export async function biasDropoutResidual(ctx: DropoutContext, x: GPUBuffer, bias: GPUBuffer, residual: GPUBuffer, opts: BiasDropoutResidualOptions): Promise<StructuredResult> {
  ctx.checkAlive();
  checkOptions(opts, 'p and shape', STRUCTURED_OPTIONS);
  const rule = keepRule(opts.p);
  const prep = prepare(ctx, x, opts, 'x', true);
  if (prep.shape.length < 1) throw new InvalidArgumentError('shape', 'at least 1 dimension (..., C)', prep.shape);
  const cols = prep.shape[prep.shape.length - 1]!;
  ctx.checkStorage(bias, 'bias', bindingBytes('data', prep.dtype, Math.max(cols, 1)));
  ctx.checkStorage(residual, 'residual', prep.bytes);
  if (residual === x) throw new InvalidArgumentError('residual', 'a buffer other than x (x, bias and residual must be distinct)');
  if (bias === x || bias === residual) throw new InvalidArgumentError('bias', 'a buffer other than x and residual (x, bias and residual must be distinct)');
  if (opts.out !== undefined && (opts.out === bias || opts.out === residual)) {
    throw new InvalidArgumentError('out', 'a buffer other than x, bias and residual (this op does not run in place)');
  }
  const training = opts.training ?? true;
  const rand = randomFor(ctx, opts, training);
  const effective: KeepRule = training ? rule : { kind: 'identity' };
  const scale = effective.kind === 'mask' ? effective.scale : 1;
  const state: StructuredState = { op: 'bias-residual', ...rand, p: opts.p, shape: prep.shape, noiseShape: prep.noiseShape, dtype: prep.dtype, training, scale };
  const output = opts.out ?? ctx.acquire(prep.bytes, 'biasDropoutResidual output');
  const buffers = {
    1: { buffer: x, argument: 'x' },
    2: { buffer: output, argument: 'out' },
    3: { buffer: residual, argument: 'residual' },
    5: { buffer: bias, argument: 'bias' },
  };
  const threshold = effective.kind === 'mask' ? effective.threshold : 0;
  await refundOnFailure(ctx, [opts.out === undefined ? output : undefined], () =>
    effective.kind === 'zeros'
      ? copyInto(ctx, prep, buffers[3], output, opts.encoder)
      : launch(ctx, prep, { kernel: structuredKernels.biasResidual, buffers, rand, threshold, scale, extraU: cols, constants: { COLUMNS: cols }, encoder: opts.encoder }),
  );
  return { output, state };
}

export interface BiasDropoutResidualGrads {
  /** dy * keep / (1 - p). */
  dx: GPUBuffer;
  /** Sum of dx over every dimension but the last (C elements). */
  dbias: GPUBuffer;
  /** dy itself (the same buffer): the residual's gradient. */
  dresidual: GPUBuffer;
}

const BIAS_BACKWARD_OPTIONS = optionNames<RecordOptions & { outX?: GPUBuffer; outBias?: GPUBuffer }>({ outX: true, outBias: true, encoder: true });

/** Gradients of biasDropoutResidual for x, bias and residual, the mask regenerated from the state. */
export async function biasDropoutResidualBackward(
  ctx: DropoutContext,
  dy: GPUBuffer,
  state: StructuredState,
  opts: RecordOptions & { outX?: GPUBuffer; outBias?: GPUBuffer } = {},
): Promise<BiasDropoutResidualGrads> {
  ctx.checkAlive();
  checkState(state, ['bias-residual']);
  checkOptions(opts, 'outX, outBias or encoder', BIAS_BACKWARD_OPTIONS);
  const prep = prepareBackward(ctx, dy, state, { out: opts.outX, encoder: opts.encoder }, 'outX');
  const cols = prep.shape[prep.shape.length - 1] ?? 1;
  const rows = cols === 0 ? 0 : prep.count / cols;
  const biasBytes = bindingBytes('data', prep.dtype, Math.max(cols, 1));
  if (opts.outBias !== undefined) {
    ctx.checkStorage(opts.outBias, 'outBias', biasBytes);
    if (opts.outBias === dy || opts.outBias === opts.outX) throw new InvalidArgumentError('outBias', 'a buffer other than dy and outX');
  }
  // The reduction binds dx whole.
  if (prep.bytes > ctx.device.limits.maxStorageBufferBindingSize) {
    throw new UnsupportedError(`state.shape: the bias gradient reads dx in one binding; ${prep.bytes} bytes exceed this device's maxStorageBufferBindingSize`);
  }
  const rule: KeepRule = state.training ? keepRule(state.p) : { kind: 'identity' };
  const dx = await applyMask(ctx, prep, { buffer: dy, argument: 'dy' }, opts.outX, rule, state, state.scale, opts.encoder);
  const dbias = opts.outBias ?? ctx.acquire(biasBytes, 'bias grad');
  try {
    await refundOnFailure(ctx, [opts.outBias === undefined ? dbias : undefined], () => reduceRows(ctx, dx, dbias, rows, cols, prep.dtype, opts.encoder));
  } catch (e) {
    // dx's work was recorded (and, without an encoder, ran): back to the pool once that is submitted.
    if (opts.outX === undefined && dx !== dy) ctx.retire(dx, opts.encoder);
    throw e;
  }
  return { dx, dbias, dresidual: dy };
}

/** dbias[c] = sum over r of dx[r * cols + c]: blocks of rows summed in f32, then the blocks. */
async function reduceRows(ctx: DropoutContext, dx: GPUBuffer, dbias: GPUBuffer, rows: number, cols: number, dtype: Dtype, encoder?: GPUCommandEncoder): Promise<void> {
  if (cols === 0) return;
  const perBlock = BIAS_GRAD_BLOCK_ROWS;
  const blocks = Math.max(1, Math.ceil(rows / perBlock));
  const table = new Uint32Array(4 + 4 * MAX_RANK);
  table.set([0, cols, rows, perBlock]);
  const partial = ctx.acquire(blocks * cols * 4, 'bias grad partial sums');
  const stage = (count: number): Prepared => ({ shape: [count], noiseShape: [count], count, dtype, bytes: 0, table });
  const stage1 = stage(blocks * cols);
  await refundOnFailure(ctx, [partial], () =>
    launch(ctx, stage1, { kernel: structuredKernels.biasGradPartial, buffers: { 1: { buffer: dx, argument: 'dx' }, 2: { buffer: partial, argument: 'partial' } }, encoder }),
  );
  try {
    await launch(ctx, stage(cols), { kernel: structuredKernels.biasGradFinal, buffers: { 1: { buffer: partial, argument: 'partial' }, 2: { buffer: dbias, argument: 'outBias' } }, encoder });
  } finally {
    ctx.retire(partial, encoder);
  }
}
