// Device lifetime scenarios, each run in a child process of its own with --expose-gc by
// tests/lifetime.test.ts (a crash or a deadlock there takes down that process, not the suite):
//   node --expose-gc node_modules/vite-node/dist/cli.mjs tests/lifetime/scenarios.ts <name> [rounds]
// A scenario prints one line starting 'ok' and exits 0, or throws (exit 1).
import { DeviceLostError, DropoutContext, dropout, readArray } from '../../src/index.js';
import { requestNodeDevice } from '../../src/node.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

/** Rejects if `p` is still pending after `ms`: a lost device must never leave a promise hanging. */
function settle<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Expects `p` to reject with DeviceLostError (within the time limit). Call it as soon as `p`
 * exists: it attaches the handler at once, so no rejection goes unobserved meanwhile. */
async function expectLost(p: Promise<unknown>, what: string): Promise<void> {
  const outcome = await settle(
    p.then(
      () => null,
      (e: unknown) => e,
    ),
    what,
  );
  if (!(outcome instanceof DeviceLostError))
    throw new Error(`${what}: expected DeviceLostError, got ${outcome === null ? 'success' : String(outcome)}`);
}

function data(n: number, salt: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => ((i * 2654435761 + salt) % 1000) / 250 - 2);
}

/** The device alone is kept (the object requestNodeDevice returned is dropped), with a forced
 * collection every 10 calls: the Dawn instance must stay alive under the device. */
async function keepDevice(rounds: number): Promise<string> {
  const { device } = await requestNodeDevice();
  const ctx = await DropoutContext.create(device);
  const x = ctx.upload(data(4096, 1));
  let kept = 0;
  for (let i = 0; i < rounds; i++) {
    const { output } = await dropout(ctx, x, { p: 0.5, seed: BigInt(i) });
    const y = await readArray(ctx, output, 'f32', 4096);
    kept += y.filter((v) => v !== 0).length;
    ctx.release(output);
    if (i % 10 === 9) gc!();
  }
  device.destroy();
  return `${rounds} calls, ${kept} elements kept`;
}

/** The same through the tfjs entry: only the device goes to useTfjsDevice. */
async function tfjsKeepDevice(rounds: number): Promise<string> {
  const tf = await import('@tensorflow/tfjs-core');
  const { useTfjsDevice, dropout: tfDropout } = await import('../../src/tfjs.js');
  await useTfjsDevice((await requestNodeDevice()).device);
  gc!();
  let kept = 0;
  for (let i = 0; i < rounds; i++) {
    const y = tf.tidy(() => tfDropout(tf.ones([1000]), { p: 0.5, seed: i }));
    kept += (await y.data()).filter((v) => v !== 0).length;
    y.dispose();
    if (i % 10 === 9) gc!();
  }
  tf.engine().reset();
  return `${rounds} tfjs calls, ${kept} elements kept`;
}

/** Open a device, use it, release it, collect: `rounds` times, with work pending at release in
 * turn (an op and a readback, a readback, or nothing), which must reject with DeviceLostError. A
 * quarter of the rounds run dropout (compiling its pipelines on the new device); the others use
 * the device through uploads and readbacks, which go through the same Dawn events and cost no
 * compile. */
async function cycles(rounds: number): Promise<string> {
  let rejected = 0;
  for (let i = 0; i < rounds; i++) {
    const nd = await requestNodeDevice();
    const ctx = new DropoutContext(nd.device);
    const data = new Float32Array(1 << 14).fill(i);
    const x = ctx.upload(data);
    const compute = i % 4 === 0;
    const output = compute ? (await dropout(ctx, x, { p: 0.25, seed: BigInt(i) })).output : x;
    const first = await readArray(ctx, output, 'f32', 16);
    const kept = compute ? Math.fround(i * Math.fround(1 / 0.75)) : i;
    if (first.some((v) => v !== kept && !(compute && v === 0))) throw new Error(`round ${i}: read back ${first.join(', ')}`);
    const pending: Promise<unknown>[] = [];
    if (compute) pending.push(dropout(ctx, x, { p: 0.5, seed: 1n, out: x }));
    if (i % 4 !== 3) pending.push(ctx.readBytes(output, 1 << 16));
    nd.release();
    const outcomes = pending.map((p) => expectLost(p, `round ${i}: work pending at release()`));
    gc!();
    await Promise.all(outcomes);
    rejected += outcomes.length;
    await expectLost(dropout(ctx, x, { p: 0.5, seed: 2n }), `round ${i}: an op after release()`);
    nd.release(); // a second release does nothing
  }
  return `${rounds} devices opened, used and released; ${rejected} pending calls rejected`;
}

/** A device destroyed under a stream of ops and readbacks that never stops submitting: every
 * call settles, the first ones resolve and everything after the loss rejects with DeviceLostError. */
async function lossUnderLoad(rounds: number): Promise<string> {
  let rejected = 0;
  for (let i = 0; i < rounds; i++) {
    const nd = await requestNodeDevice();
    const ctx = await DropoutContext.create(nd.device);
    const x = ctx.upload(data(1 << 16, i));
    const calls: Promise<PromiseSettledResult<unknown>>[] = [];
    const lossAt = 4 + (i % 16);
    for (let j = 0; j < 24; j++) {
      const op = dropout(ctx, x, { p: 0.5, seed: BigInt(j) });
      calls.push(
        settle(
          op.then((r) => ctx.readBytes(r.output, 1 << 18)),
          `round ${i}, call ${j}`,
        ).then(
          (value) => ({ status: 'fulfilled', value }),
          (reason: unknown) => ({ status: 'rejected', reason }),
        ),
      );
      // Some calls finish before the loss, some are in flight at it, the rest come after it.
      if (j === 2) await calls[0];
      if (j === lossAt) nd.device.destroy();
      if (j % 5 === 4) gc!();
    }
    const outcomes = await Promise.all(calls);
    if (outcomes[0]!.status !== 'fulfilled')
      throw new Error(
        `round ${i}: the first call, finished before the loss, failed: ${String((outcomes[0] as PromiseRejectedResult).reason)}`,
      );
    for (const [j, o] of outcomes.entries()) {
      if (o.status === 'rejected') {
        if (!(o.reason instanceof DeviceLostError))
          throw new Error(`round ${i}, call ${j}: rejected with ${String(o.reason)}, not DeviceLostError`);
        rejected++;
      } else if (j > lossAt) {
        throw new Error(`round ${i}, call ${j}: made after the device was destroyed, yet it resolved`);
      }
    }
    nd.release();
    gc!();
  }
  return `${rounds} devices lost under load; ${rejected} calls rejected with DeviceLostError`;
}

const scenarios: Record<string, (rounds: number) => Promise<string>> = {
  'keep-device': keepDevice,
  'tfjs-keep-device': tfjsKeepDevice,
  cycles,
  'loss-under-load': lossUnderLoad,
};

const [name, rounds] = process.argv.slice(2);
const scenario = scenarios[name ?? ''];
if (!scenario) throw new Error(`scenario: expected one of ${Object.keys(scenarios).join(', ')}, got ${name}`);
console.log(`ok ${name}: ${await scenario(Number(rounds ?? 20))}`);
