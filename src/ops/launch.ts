// The KernelCall of a structured op from its prepared shapes, plus the copy and the mask
// application most structured ops end in.
import type { KeepRule, RandomState } from '../contract.js';
import { kernels } from '../kernels/elementwise.js';
import type { KernelRecord } from '../kernels/record.js';
import { structuredKernels } from '../kernels/structured.js';
import type { Runtime } from '../runtime/context.js';
import type { KernelCall } from '../runtime/dispatch.js';
import type { BoundBuffer } from '../runtime/units.js';
import { withOutput } from './common.js';
import type { Prepared } from './prepare.js';

/** The call's fields besides those the prepared shapes give (dtype, count, broadcast table). */
export type StructuredCall<K extends KernelRecord = KernelRecord> = Omit<KernelCall<K>, 'dtype' | 'count' | 'broadcast'>;

/** `call` over `prep`'s elements: its dtype and count, and the broadcast table for a 'broadcast' kernel. */
export function over<K extends KernelRecord>(prep: Prepared, call: StructuredCall<K>): KernelCall<K> {
  return Object.assign(
    { dtype: prep.dtype, count: prep.count, broadcast: call.kernel.mask === 'broadcast' ? prep.table : undefined },
    call,
  ) as KernelCall<K>;
}

/** A copy of `from` into `out` (the core identity kernel): eval modes that must still write `out`. */
export function copyInto(rt: Runtime, prep: Prepared, from: BoundBuffer, out: GPUBuffer, encoder?: GPUCommandEncoder): Promise<void> {
  return rt.dispatcher.dispatch(
    over(prep, { kernel: kernels.identity, buffers: { x: from, out: { buffer: out, argument: 'out' } }, encoder }),
  );
}

/**
 * The call of y = keep ? x * scale : 0 under `rule` (not 'identity' with nothing to write: see
 * applyMask): the element-wise dropout kernel where every element is its own mask element (the
 * same words, without the broadcast arithmetic), else the broadcast one.
 */
export function maskCall(
  prep: Prepared,
  input: BoundBuffer,
  target: BoundBuffer,
  rule: KeepRule,
  rand: RandomState,
  scale: number,
  encoder: GPUCommandEncoder | undefined,
): KernelCall {
  if (rule.kind === 'identity') return over(prep, { kernel: kernels.identity, buffers: { x: input, out: target }, encoder });
  if (rule.kind === 'zeros') return over(prep, { kernel: kernels.zeros, buffers: { out: target }, encoder });
  const kernel = isElementwise(prep.table) ? kernels.dropoutForward : structuredKernels.masked;
  return over(prep, { kernel, buffers: { x: input, out: target }, rand, threshold: rule.threshold, scale, encoder });
}

/** Whether a broadcast table maps element i to mask element i (no dimension, or one masked one). */
function isElementwise(table: Uint32Array): boolean {
  return table[0] === 0 || (table[0] === 1 && table[5] !== 0);
}

/** y = keep ? x * scale : 0 under `rule`, or x itself when nothing is to be done and no `out` is given. */
export async function applyMask(
  rt: Runtime,
  prep: Prepared,
  input: BoundBuffer,
  out: GPUBuffer | undefined,
  rule: KeepRule,
  rand: RandomState,
  scale: number,
  encoder: GPUCommandEncoder | undefined,
): Promise<GPUBuffer> {
  if (rule.kind === 'identity' && out === undefined) return input.buffer;
  return withOutput(rt, out, prep.bytes, 'structured dropout output', (output) =>
    rt.dispatcher.dispatch(maskCall(prep, input, { buffer: output, argument: 'out' }, rule, rand, scale, encoder)),
  );
}
