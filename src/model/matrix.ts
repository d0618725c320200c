// The model kit's matrices: row-major f32 rows x cols in a GPU storage buffer, their check, upload
// and readback, and one-hot targets.

import { Got, InvalidArgumentError } from '../errors.js';
import { type DropoutContext, type Runtime, runtimeOf } from '../runtime/context.js';

/** A row-major rows x cols f32 matrix in a GPU storage buffer. */
export interface Matrix {
  /** The data, rows x cols f32 (4 bytes each) from byte 0, STORAGE usage. */
  buffer: GPUBuffer;
  /** Rows (a batch's samples), a positive integer. */
  rows: number;
  /** Columns (features), a positive integer. */
  cols: number;
}

/** A whole number >= 1 (the model kit's sizes). */
export function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** Throws unless `m` is a Matrix whose buffer holds rows x cols f32 (and has `cols` columns when given). */
export function checkMatrix(ctx: DropoutContext, m: unknown, argument: string, cols?: number): asserts m is Matrix {
  if (typeof m !== 'object' || m === null) throw new InvalidArgumentError(argument, 'a Matrix { buffer, rows, cols }', m);
  const { rows, cols: c, buffer } = m as Matrix;
  if (!isPositiveInteger(rows) || !isPositiveInteger(c)) {
    throw new InvalidArgumentError(`${argument}.rows/cols`, 'positive integers', [rows, c]);
  }
  if (cols !== undefined && c !== cols) {
    throw new InvalidArgumentError(argument, `a matrix with ${cols} columns`, new Got(`${rows} x ${c}`));
  }
  const rt: Runtime = runtimeOf(ctx);
  rt.transfers.checkStorage(buffer, `${argument}.buffer`, rows * c * 4);
}

/**
 * The most bytes one buffer of the model kit may hold: its kernels bind every buffer whole (no
 * chunking), so each must fit one storage binding, and one buffer. `name` is the binding limit.
 */
export function wholeBindingLimit(ctx: DropoutContext): { bytes: number; name: string } {
  const { maxStorageBufferBindingSize: binding, maxBufferSize } = ctx.device.limits;
  return binding <= maxBufferSize
    ? { bytes: binding, name: 'maxStorageBufferBindingSize' }
    : { bytes: maxBufferSize, name: 'maxBufferSize' };
}

/** Throws unless `rows` rows of `perRow` f32 values fit one whole binding; `argument` names what
 * set the rows, `what` says which buffer takes `perRow` values a row. */
export function checkRowsFit(ctx: DropoutContext, rows: number, perRow: number, argument: string, what: string): void {
  const limit = wholeBindingLimit(ctx);
  if (rows * perRow * 4 > limit.bytes) {
    throw new InvalidArgumentError(
      argument,
      `at most ${Math.floor(limit.bytes / (perRow * 4))} rows (${what} must fit this device's ${limit.name} of ${limit.bytes} bytes)`,
      rows,
    );
  }
}

/** Throws unless a matrix's buffer, which the model kit's kernels bind whole, fits one binding. */
export function checkBoundWhole(ctx: DropoutContext, m: Matrix, argument: string): void {
  const limit = wholeBindingLimit(ctx);
  if (m.buffer.size > limit.bytes) {
    throw new InvalidArgumentError(
      argument,
      `a buffer of at most ${limit.bytes} bytes (the model kit's kernels bind it whole, and this device's ${limit.name} is ${limit.bytes} bytes)`,
      new Got(`${m.buffer.size} bytes`),
    );
  }
}

/** Uploads row-major data as a rows x cols Matrix (a pooled buffer: give it back with ctx.release).
 * Throws {@link InvalidArgumentError} unless rows and cols are positive integers and `data` holds rows x cols values. */
export function uploadMatrix(ctx: DropoutContext, data: ArrayLike<number>, rows: number, cols: number): Matrix {
  if (!isPositiveInteger(rows) || !isPositiveInteger(cols)) throw new InvalidArgumentError('rows/cols', 'positive integers', [rows, cols]);
  if (data.length !== rows * cols)
    throw new InvalidArgumentError('data', `${rows * cols} values (${rows} x ${cols})`, new Got(`${data.length} values`));
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  return { buffer: ctx.upload(values, 'matrix'), rows, cols };
}

/** Reads a Matrix back to the CPU as rows x cols row-major values (submits pending work first).
 * Rejects with {@link InvalidArgumentError} for a bad matrix. */
export async function readMatrix(ctx: DropoutContext, m: Matrix): Promise<Float32Array> {
  checkMatrix(ctx, m, 'm');
  return new Float32Array(await ctx.readBytes(m.buffer, m.rows * m.cols * 4));
}

/** One-hot rows for class labels in 0..classes-1 (targets of the 'xent' loss): labels.length x
 * classes values, row-major. Throws {@link InvalidArgumentError} for a label out of range. */
export function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  if (!isPositiveInteger(classes)) throw new InvalidArgumentError('classes', 'a positive integer', classes);
  const out = new Float32Array(labels.length * classes);
  for (let r = 0; r < labels.length; r++) {
    const c = labels[r]!;
    if (!Number.isInteger(c) || c < 0 || c >= classes) throw new InvalidArgumentError(`labels[${r}]`, `a class in 0..${classes - 1}`, c);
    out[r * classes + c] = 1;
  }
  return out;
}
