// Test-only helpers: runs shaders/philox.wgsl's functions through tests/fixtures/philox_fixture.wgsl,
// and an independent little PRNG for test inputs (never the library's own generator).

import { mulberry32 } from '../demo/data.js';
import philoxSource from '../shaders/philox.wgsl?raw';
import { type DropoutContext, readArray } from '../src/index.js';
import { runtimeOf } from '../src/runtime/context.js';
import fixtureSource from './fixtures/philox_fixture.wgsl?raw';
import { poisoned } from './gpu.js';

export type FixtureEntry = 'philox_blocks' | 'mulhilo_pairs' | 'mulhilo_m0_pairs' | 'add64_pairs';

const modules = new WeakMap<GPUDevice, GPUShaderModule>();

/**
 * Runs one fixture entry point over `blocks` output blocks (4 u32 each) and reads them back.
 * `inputs` holds vec4<u32> records: 2 per block for philox_blocks, 1 for the others.
 */
export async function runFixture(ctx: DropoutContext, entry: FixtureEntry, inputs: Uint32Array, blocks: number): Promise<Uint32Array> {
  const { device } = ctx;
  let module = modules.get(device);
  if (!module) {
    module = device.createShaderModule({ label: 'philox test fixture', code: `${philoxSource}\n${fixtureSource}` });
    modules.set(device, module);
  }
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: entry } });
  const input = ctx.upload(inputs, 'fixture inputs');
  const output = poisoned(ctx, blocks * 16);
  await runtimeOf(ctx).submission.encode((encoder) => {
    const pass = encoder.beginComputePass({ label: entry });
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: input } },
          { binding: 1, resource: { buffer: output, size: blocks * 16 } },
        ],
      }),
    );
    pass.dispatchWorkgroups(Math.ceil(blocks / 64));
    pass.end();
  });
  const words = await readArray(ctx, output, 'u32', blocks * 4);
  ctx.release(input);
  ctx.release(output);
  return words;
}

/** mulberry32 (demo/data.ts, one copy): a small deterministic u32 stream for test inputs. */
export const testRng: (seed: number) => () => number = mulberry32;

/** Values where 32-bit arithmetic carries or overflows. */
export const EDGE_WORDS = [
  0, 1, 2, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0xffff0000, 0x0000ffff,
] as const;

/** A test word: an edge value, a word with the top bit set, or uniform, in equal shares. */
export function edgyWord(rng: () => number): number {
  const r = rng();
  const pick = r % 3;
  if (pick === 0) return EDGE_WORDS[rng() % EDGE_WORDS.length]!;
  if (pick === 1) return (rng() | 0x80000000) >>> 0;
  return rng();
}

export function u64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Bit patterns of typed-array data, so float comparisons are exact (-0, NaN payloads included). */
export function bits(a: Float32Array | Uint32Array | Uint16Array | Uint8Array): Uint32Array | Uint16Array | Uint8Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
}

/** Index of the first element whose bits differ (-1 if none), with a short description for messages. */
export function mismatch(
  got: Float32Array | Uint32Array | Uint16Array | Uint8Array,
  want: Float32Array | Uint32Array | Uint16Array | Uint8Array,
): string | null {
  const g = bits(got);
  const w = bits(want);
  if (g.length !== w.length) return `length ${g.length} != ${w.length}`;
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) {
      let count = 0;
      for (let j = i; j < w.length; j++) if (g[j] !== w[j]) count++;
      return `${count} of ${w.length} differ, first at ${i}: got ${got[i]} (0x${g[i]!.toString(16)}), want ${want[i]} (0x${w[i]!.toString(16)})`;
    }
  }
  return null;
}
