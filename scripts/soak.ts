// Soak: many calls over many distinct shapes, each shape with buffers of its own, and the process's
// resident memory (RSS) before and after. Every call is awaited, and nothing else yields to the
// event loop (no readback, no timer): the pattern of a training loop whose steps only await our
// ops, in which Dawn sees completed work only where the library lets it look.
//
//   npm run soak -- [--calls 100000] [--shapes 1000] [--no-validate] [--check 997] [--json file]
//
// --no-validate: a context with validate: false (no error scopes, the fastest submissions).
// --check k: every k-th call is read back and compared with the CPU reference (0: never; reading
// back yields to the event loop, so the default checks rarely).
// Prints a line per tenth of the run (calls, RSS, JS heap, pool allocations) and a summary;
// --json writes the summary too. Run with `node --expose-gc` and --gc to collect garbage every
// 100 calls: what remains then is what the garbage collector cannot free.
import { writeFileSync } from 'node:fs';
import { DropoutContext, dropout, readArray, spatialDropout } from '../src/index.js';
import { requestNodeDevice } from '../src/node.js';
import { spatialNoiseShape } from '../src/ops/index.js';
import { referenceDropout, referenceStructuredDropout } from '../src/reference.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name}: expected a whole number, got ${process.argv[i + 1]}`);
  return v;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const jsonAt = process.argv.indexOf('--json');
const jsonFile = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
const CALLS = option('calls', 100_000);
const SHAPES = Math.max(1, option('shapes', 1000));
const CHECK = option('check', 997);
const VALIDATE = !flag('no-validate');
const gc = flag('gc') ? (globalThis as { gc?: () => void }).gc : undefined;
if (flag('gc') && !gc) throw new Error('--gc needs node --expose-gc');

const mib = (bytes: number) => bytes / (1 << 20);
function memory(): { rssMiB: number; heapMiB: number } {
  const m = process.memoryUsage();
  return { rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed) };
}

/** Shape s: [n, c, h, w], with n * c * h * w distinct for every s (so its buffers are too), and
 * small, so that what grows is per call, not data. */
function shapeOf(s: number): number[] {
  return [1 + (s % 2), 2, 2, 8 + s];
}

const nd = await requestNodeDevice();
const ctx = await DropoutContext.create(nd.device, { seed: 7n, validate: VALIDATE });
const inputs = new Map<number, { buffer: GPUBuffer; data: Float32Array }>();
function input(s: number): { buffer: GPUBuffer; data: Float32Array } {
  let i = inputs.get(s);
  if (!i) {
    const shape = shapeOf(s);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, k) => ((k * 7919 + s) % 200) / 50 - 2);
    i = { buffer: ctx.upload(data), data };
    inputs.set(s, i);
  }
  return i;
}

/** Call k, on shape k mod SHAPES: element-wise dropout and spatial dropout in turn. */
async function call(k: number): Promise<GPUBuffer> {
  const s = k % SHAPES;
  const { buffer } = input(s);
  const seed = BigInt(k);
  const r =
    k % 2
      ? await dropout(ctx, buffer, { p: 0.25, seed })
      : await spatialDropout(ctx, buffer, { p: 0.5, shape: shapeOf(s), layout: 'channels-first', seed });
  return r.output;
}

/** Checks call k's output against the CPU reference. */
async function check(k: number, output: GPUBuffer): Promise<void> {
  const s = k % SHAPES;
  const { data } = input(s);
  const got = await readArray(ctx, output, 'f32', data.length);
  const want =
    k % 2
      ? referenceDropout(data, { p: 0.25, seed: BigInt(k) })
      : referenceStructuredDropout(data, {
          p: 0.5,
          shape: shapeOf(s),
          noiseShape: spatialNoiseShape(shapeOf(s), { layout: 'channels-first' }),
          seed: BigInt(k),
        });
  for (let i = 0; i < data.length; i++) {
    if (!Object.is(got[i], want[i]))
      throw new Error(`call ${k} (shape ${shapeOf(s).join('x')}): element ${i} is ${got[i]}, the reference says ${want[i]}`);
  }
}

// Warm-up: every shape once (inputs uploaded, pipelines compiled, pool filled).
for (let k = 0; k < SHAPES; k++) ctx.release(await call(k));
await nd.device.queue.onSubmittedWorkDone();
gc?.();
const before = memory();
const started = performance.now();
const rows: { calls: number; rssMiB: number; heapMiB: number; poolAllocations: number }[] = [];
console.log(
  `soak on ${nd.adapterName}: ${CALLS} calls over ${SHAPES} shapes, validate ${VALIDATE}, ${CHECK ? `every ${CHECK}th call checked` : 'no checks'}${gc ? ', gc() every 100 calls' : ''}; ` +
    `after warm-up RSS ${before.rssMiB.toFixed(1)} MiB, heap ${before.heapMiB.toFixed(1)} MiB`,
);
const tenth = Math.max(1, Math.floor(CALLS / 10));
for (let k = 0; k < CALLS; k++) {
  const output = await call(k);
  if (CHECK && k % CHECK === 0) await check(k, output);
  ctx.release(output);
  if (gc && k % 100 === 99) gc();
  if ((k + 1) % tenth === 0) {
    const m = memory();
    rows.push({ calls: k + 1, ...m, poolAllocations: ctx.pool.allocations });
    console.log(
      `  ${String(k + 1).padStart(8)} calls  RSS ${m.rssMiB.toFixed(1).padStart(7)} MiB  heap ${m.heapMiB.toFixed(1).padStart(6)} MiB  pool allocations ${ctx.pool.allocations}`,
    );
  }
}
await nd.device.queue.onSubmittedWorkDone();
const seconds = (performance.now() - started) / 1000;
const after = memory();
const growth = after.rssMiB - before.rssMiB;
const summary = {
  adapter: nd.adapterName,
  calls: CALLS,
  shapes: SHAPES,
  validate: VALIDATE,
  check: CHECK,
  gc: Boolean(gc),
  seconds,
  callsPerSecond: CALLS / seconds,
  before,
  after,
  rssGrowthMiB: growth,
  rows,
};
console.log(
  `done in ${seconds.toFixed(1)} s (${summary.callsPerSecond.toFixed(0)} calls/s): RSS ${before.rssMiB.toFixed(1)} -> ${after.rssMiB.toFixed(1)} MiB ` +
    `(${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB; highest ${Math.max(...rows.map((r) => r.rssMiB), after.rssMiB).toFixed(1)} MiB)`,
);
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(summary, null, 2) + '\n');
ctx.destroy();
nd.release();
