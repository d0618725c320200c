// Byte arithmetic and WebGPU constants the runtime modules share.
import { InvalidArgumentError } from '../errors.js';
import type { BindingUnit } from '../kernels/elementwise.js';
import type { Dtype } from '../kernels/shaders.js';

// GPUBufferUsage / GPUMapMode values, spelled out so the library does not need the globals.
export const Usage = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;
export const MAP_MODE_READ = 0x1;
export const COMPUTE_STAGE = 0x4; // GPUShaderStage.COMPUTE

/** Chunks start on multiples of this many elements, so every binding offset (data in f16 or f32,
 * and the packed mask at 1/8 byte per element) is a multiple of 256 bytes. */
export const CHUNK_ALIGN = 2048;

/** A storage buffer bound to one binding of a call; `argument` names it in errors. */
export interface BoundBuffer {
  buffer: GPUBuffer;
  argument: string;
}

export function dtypeBytes(dtype: Dtype): number {
  if (dtype === 'f32') return 4;
  if (dtype === 'f16') return 2;
  throw new InvalidArgumentError('dtype', "'f32' or 'f16'", dtype);
}

/** The units with a size per element ('whole' bindings are the caller's whole buffer). */
export type ElementUnit = Exclude<BindingUnit, 'whole'>;

/** Bytes per element of a binding of `unit` (1/8 for the packed mask). */
export function unitBytes(unit: ElementUnit, dtype: Dtype): number {
  return unit === 'data' ? dtypeBytes(dtype) : unit === 'word' ? 4 : 1 / 8;
}

/** Bytes a binding of `count` elements needs: storage bindings are whole 4-byte words. */
export function bindingBytes(unit: ElementUnit, dtype: Dtype, count: number): number {
  return Math.ceil((count * unitBytes(unit, dtype)) / 4) * 4;
}

export function isGpuBuffer(v: unknown): v is GPUBuffer {
  return (
    typeof v === 'object' && v !== null && typeof (v as GPUBuffer).mapAsync === 'function' && typeof (v as GPUBuffer).size === 'number'
  );
}
