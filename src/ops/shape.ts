// Shapes and noise shapes: checks, the broadcast table the structured kernels read, and the noise
// shapes of SpatialDropout, DropPath and variational dropout.
import { InvalidArgumentError } from '../errors.js';

/** Most dimensions a shape may have (the size of the broadcast table in shaders/structured.wgsl). */
export const MAX_RANK = 8;

/** A tensor shape: up to 8 non-negative integer extents, outermost first (row-major), whose
 * product is at most 2^32 - 1 elements. */
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
      throw new InvalidArgumentError(
        argument,
        `a shape that broadcasts to [${shape.join(', ')}]: dimension ${k} must be ${shape[k]} or 1`,
        noiseShape,
      );
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

/** Where a tensor's channels are: 'channels-first' (N, C, ...) or 'channels-last' (N, ..., C). */
export type ChannelLayout = 'channels-first' | 'channels-last';

/** Which axis of a spatial-dropout input holds the channels: a layout, an axis, or both when they agree. */
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
