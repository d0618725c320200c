// The launch of a structured kernel (pipeline specialization, the optional mask table, the
// placeholder binding), plus the copy and the mask application most structured ops end in.
import type { KeepRule } from '../contract.js';
import { runtimeOf, Usage, type BoundBuffer, type DispatchCall, type DropoutContext } from '../context.js';
import { kernels } from '../kernels/elementwise.js';
import type { BuffersOf, KernelRecord, UniformsOf } from '../kernels/record.js';
import { structuredKernels } from '../kernels/structured.js';
import { refundOnFailure, type RandomState } from './common.js';
import type { Prepared } from './prepare.js';
import { shapeSize } from './shape.js';

/** One structured kernel launch: the kernel, its buffers and its Params. */
export interface Launch<K extends KernelRecord = KernelRecord> {
  kernel: K;
  /** By the record's binding names (a 'broadcast' kernel's `table` is bound here). */
  buffers: Omit<BuffersOf<K, BoundBuffer>, 'table'>;
  rand?: RandomState;
  threshold?: number;
  scale?: number;
  /** The record's own uniform fields, by name. */
  uniforms?: UniformsOf<K>;
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
  if (l.kernel.mask !== 'broadcast' || prep.count === 0) return undefined;
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
 * enough elements, and RNG work to save (a table of words where threshold 0 keeps everything
 * without it; a table of normals always saves Box-Muller).
 */
function maskTable(ctx: DropoutContext, l: Launch, prep: Prepared): { kernel: KernelRecord; count: number } | undefined {
  const k = l.kernel;
  if (k.mask !== 'broadcast' || l.rand === undefined || prep.count === 0) return undefined;
  if (k.table === 'words' && !l.threshold) return undefined;
  const maskCount = shapeSize(prep.noiseShape);
  const { minElements, minReuse } = ctx.maskTables;
  if (maskCount === prep.count || prep.count < minElements || maskCount * minReuse > prep.count) return undefined;
  if (maskCount * 4 > Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize)) return undefined;
  return { kernel: k.table === 'normals' ? kernels.normal : kernels.words, count: maskCount };
}

/** A 16-byte buffer per context, bound as the mask table of 'broadcast' calls that read none (the
 * binding is declared anyway); the tfjs entry binds it too. */
const placeholders = new WeakMap<DropoutContext, GPUBuffer>();
export function maskTablePlaceholder(ctx: DropoutContext): GPUBuffer {
  let buffer = placeholders.get(ctx);
  if (!buffer) placeholders.set(ctx, (buffer = ctx.device.createBuffer({ label: 'webgpu-dropout no mask table', size: 16, usage: Usage.STORAGE })));
  return buffer;
}

/**
 * The dispatches of one launch: the kernel's call, after the call that writes its mask table when
 * one pays (see maskTable). `table` is that table, taken from the pool: the caller refunds it if
 * the calls are refused and retires it once they are recorded.
 */
export function launchCalls<K extends KernelRecord>(ctx: DropoutContext, prep: Prepared, launched: Launch<K>): { calls: DispatchCall[]; table?: GPUBuffer } {
  const l = launched as Launch;
  const mask = maskTable(ctx, l, prep);
  const table = mask && { buffer: ctx.acquire(mask.count * 4, 'mask table'), argument: 'mask table' };
  // A 'broadcast' kernel declares a mask-table binding, bound to a placeholder when the call uses
  // no table, and reads the broadcast table (aux); the other kernels have neither.
  const broadcast = l.kernel.mask === 'broadcast';
  const call: DispatchCall = {
    kernel: l.kernel,
    dtype: prep.dtype,
    count: prep.count,
    buffers: broadcast ? Object.assign({}, l.buffers, { table: table ?? { buffer: maskTablePlaceholder(ctx), argument: 'mask table' } }) : l.buffers,
    seed: l.rand?.seed,
    stream: l.rand?.stream,
    offset: l.rand?.offset,
    threshold: l.threshold,
    scale: l.scale,
    uniforms: l.uniforms,
    aux: broadcast ? prep.table : undefined,
    constants: specialization(ctx, l, prep),
    variant: table ? READS_TABLE : undefined,
    encoder: l.encoder,
  };
  if (!mask || !table) return { calls: [call] };
  // The table's writer first, recorded back to back with the call that reads it.
  const writer: DispatchCall = { kernel: mask.kernel, dtype: 'f32', count: mask.count, buffers: { out: table }, seed: l.rand!.seed, stream: l.rand!.stream, offset: l.rand!.offset, encoder: l.encoder };
  return { calls: [writer, call], table: table.buffer };
}

/** Records and submits a launch's calls together (one submission, or nothing of it if refused). */
export async function launch<K extends KernelRecord>(ctx: DropoutContext, prep: Prepared, launched: Launch<K>): Promise<void> {
  const { calls, table } = launchCalls(ctx, prep, launched);
  if (!table) return ctx.dispatch(calls[0]!);
  // Refused, nothing of it was recorded and the table goes back as if never taken.
  await refundOnFailure(ctx, [table], () => ctx.dispatchAll(calls));
  ctx.retire(table, launched.encoder);
}

/** A copy of `from` into `out` (the core identity kernel): eval modes that must still write `out`. */
export function copyInto(ctx: DropoutContext, prep: Prepared, from: BoundBuffer, out: GPUBuffer, encoder?: GPUCommandEncoder): Promise<void> {
  return launch(ctx, prep, { kernel: kernels.identity, buffers: { x: from, out: { buffer: out, argument: 'out' } }, encoder });
}

/** The launch of y = keep ? x * scale : 0 under `rule` (not 'identity' with nothing to write: see applyMask). */
export function maskLaunch(input: BoundBuffer, target: BoundBuffer, rule: KeepRule, rand: RandomState, scale: number, encoder: GPUCommandEncoder | undefined): Launch {
  if (rule.kind === 'identity') return { kernel: kernels.identity, buffers: { x: input, out: target }, encoder };
  if (rule.kind === 'zeros') return { kernel: kernels.zeros, buffers: { out: target }, encoder };
  return { kernel: structuredKernels.masked, buffers: { x: input, out: target }, rand, threshold: rule.threshold, scale, encoder };
}

/** y = keep ? x * scale : 0 under `rule`, or x itself when nothing is to be done and no `out` is given. */
export async function applyMask(
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
  const launched = maskLaunch(input, { buffer: output, argument: 'out' }, rule, rand, scale, encoder);
  await refundOnFailure(ctx, [out === undefined ? output : undefined], () => launch(ctx, prep, launched));
  return output;
}
