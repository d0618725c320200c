// Probes what this adapter's WGSL pack2x16float / unpack2x16float do, against the CPU reference
// (src/half.ts: round to nearest even, subnormals kept, overflow to infinity, NaN 0x7e00).
// The packed f16 path does not use them (shaders/f16_packed.wgsl converts in integer arithmetic);
// this says why. Run: WEBGPU_DROPOUT_ADAPTER=lavapipe|swiftshader|system npx vite-node scripts/f16-builtins.ts
import { fromHalfBits, toHalfBits } from '../src/half.js';
import { requestNodeDevice } from '../src/node.js';

const CODE = `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64) fn pack(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i < arrayLength(&src)) { dst[i] = pack2x16float(vec2<f32>(bitcast<f32>(src[i]), 0.0)) & 0xffffu; }
}
@compute @workgroup_size(64) fn unpack(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i < arrayLength(&src)) { dst[i] = bitcast<u32>(unpack2x16float(src[i]).x); }
}`;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (v: number) => {
  f32[0] = v;
  return u32[0]!;
};

async function main(): Promise<void> {
  const { device, adapter, icd, release } = await requestNodeDevice({ f16: 'off' });
  try {
    const module = device.createShaderModule({ code: CODE });
    const run = async (entry: string, input: Uint32Array): Promise<Uint32Array> => {
      const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: entry } });
      const src = device.createBuffer({ size: input.byteLength, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      new Uint32Array(src.getMappedRange()).set(input);
      src.unmap();
      const dst = device.createBuffer({ size: input.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const read = device.createBuffer({ size: input.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: src } },
            { binding: 1, resource: { buffer: dst } },
          ],
        }),
      );
      pass.dispatchWorkgroups(Math.ceil(input.length / 64));
      pass.end();
      encoder.copyBufferToBuffer(dst, 0, read, 0, input.byteLength);
      device.queue.submit([encoder.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      return new Uint32Array(read.getMappedRange().slice(0));
    };
    // Every f16 value, every midpoint between neighbours (ties), and points a quarter ulp either side.
    const values: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const lo = fromHalfBits(h);
      const hi = fromHalfBits(h + 1);
      for (const s of [1, -1]) values.push(s * lo, (s * (lo + hi)) / 2, s * (lo + (hi - lo) / 4), s * (lo + (3 * (hi - lo)) / 4));
    }
    values.push(Infinity, -Infinity, 65520, 1e6, -1e6, 2 ** -25, 3 * 2 ** -26, 1e-30, -1e-30, 1e-45);
    const inputs = Uint32Array.from(values, bitsOf);
    const nans = Uint32Array.of(0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbadbad);
    const packIn = Uint32Array.from([...inputs, ...nans]);
    const packed = await run('pack', packIn);
    const kinds = { exact: 0, tie: 0, inexact: 0, subnormal: 0, overflow: 0, nan: 0 };
    const wrong: Record<keyof typeof kinds, number> = { exact: 0, tie: 0, inexact: 0, subnormal: 0, overflow: 0, nan: 0 };
    const examples: string[] = [];
    for (let i = 0; i < packIn.length; i++) {
      u32[0] = packIn[i]!;
      const v = f32[0]!;
      const want = toHalfBits(v);
      const a = Math.abs(v);
      const kind: keyof typeof kinds = Number.isNaN(v)
        ? 'nan'
        : a >= 65520
          ? 'overflow'
          : a < 2 ** -14 && a !== 0
            ? 'subnormal'
            : fromHalfBits(want) === v
              ? 'exact'
              : Math.abs(fromHalfBits(want) - v) === Math.abs(fromHalfBits(want ^ 1) - v)
                ? 'tie'
                : 'inexact';
      kinds[kind]++;
      const got = packed[i]!;
      const ok = kind === 'nan' ? (got & 0x7c00) === 0x7c00 && (got & 0x3ff) !== 0 : got === want;
      if (!ok) {
        wrong[kind]++;
        if (examples.length < 12)
          examples.push(`${kind} ${v} (0x${packIn[i]!.toString(16)}): got 0x${got.toString(16)}, reference 0x${want.toString(16)}`);
      }
    }
    const halves = Uint32Array.from({ length: 65536 }, (_, h) => h);
    const unpacked = await run('unpack', halves);
    let unpackWrong = 0;
    let subnormalWrong = 0;
    for (let h = 0; h < 65536; h++) {
      u32[0] = unpacked[h]!;
      const want = fromHalfBits(h);
      const got = f32[0]!;
      const ok = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
      if (!ok) {
        unpackWrong++;
        if ((h & 0x7c00) === 0) subnormalWrong++;
        if (examples.length < 24) examples.push(`unpack 0x${h.toString(16)}: got ${got}, reference ${want}`);
      }
    }
    console.log(
      `adapter: ${adapter.info?.vendor} ${adapter.info?.architecture} ${adapter.info?.description} (ICD ${icd ?? 'system loader'})`,
    );
    console.log(
      `pack2x16float, cases (wrong/total): ${Object.entries(kinds)
        .map(([k, n]) => `${k} ${wrong[k as keyof typeof kinds]}/${n}`)
        .join(', ')}`,
    );
    console.log(
      `unpack2x16float over all 65536 halves: ${unpackWrong} differ from the reference (${subnormalWrong} of them subnormal inputs)`,
    );
    for (const e of examples) console.log(`  ${e}`);
  } finally {
    release();
  }
}

void main();
