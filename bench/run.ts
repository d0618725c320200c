// `npm run bench [-- options]`: the headless benchmark suite (see bench/README.md).
//   --quick            CI smoke run (< 1 minute on lavapipe): 3 sizes, short budgets
//   --out DIR          where the JSON and Markdown go (default bench/results/local, git-ignored)
//   --write-reference  a full run that refreshes the committed results in bench/results/ (no
//                      --out, --name, --quick or subset options with it)
//   --name NAME        file name stem (default: the adapter, e.g. 'lavapipe'; '-quick' appended in quick
//                      mode, '-subset' when --ops, --min, --max, --step, --no-tf or --no-cpu leave
//                      something out, so a sliced run never overwrites a full run's files)
//   --min N --max N    sizes 2^N (default 10 and 26); a --max beyond what the adapter's
//                      maxBufferSize holds as f32 is refused, naming the largest it allows
//   --step N           exponent step (default 2)
//   --budget MS        time for one cell's samples, op and copy together (default 300; quick 60)
//   --ops a,b          only ops whose id starts with one of these
//   --no-tf --no-cpu   skip a peer
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DropoutContext, DropoutError } from '../src/index.js';
import { ADAPTER_ENV } from '../src/node.js';
import { isCpuAdapter } from '../src/runtime/options.js';
import { adapterSlug, type BenchEnv, openBenchEnv } from './env.js';
import { type BenchOp, benchOps, copyCell, copyWordsFor, fitsBuffers, largestBufferBytesPerElement, P } from './ops.js';
import { ConfigError, type Options, parseArgs, UsageError } from './options.js';
import { openTfPeer, type TfPeer, timeCpuReference } from './peers.js';
import {
  type BenchReport,
  type CellResult,
  cellResult,
  formatNs,
  type MemoryRow,
  type OpResult,
  type OverheadRow,
  opTable,
  type PeerRow,
  type TargetRow,
  toMarkdown,
} from './report.js';
import { measureMemory, measureOverhead } from './sections.js';
import { GpuTimer, type Recorder, type Timing, type TimingBudget } from './timing.js';

const isTty = process.stderr.isTTY;
function progress(msg: string): void {
  if (isTty) process.stderr.write(`\r\x1b[K${msg}`);
  else process.stderr.write(`${msg}\n`);
}
function progressDone(): void {
  if (isTty) process.stderr.write('\r\x1b[K');
}

function gitCommit(): string {
  // The GPU recipe runs a bundle outside any git checkout and passes the commit in.
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  // The repository this file is in, wherever the suite was started from.
  const cwd = dirname(dirname(fileURLToPath(import.meta.url)));
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    // Earlier results in bench/results are not code: they do not make the measured tree dirty.
    const dirty = execSync("git status --porcelain --untracked-files=no -- . ':(exclude)bench/results'", {
      cwd,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

/** A software (CPU) Vulkan driver: targets and labels differ from a real GPU's. */
function onCpu(env: BenchEnv): boolean {
  return isCpuAdapter(env.adapter.info);
}

/**
 * Runs `work` inside WebGPU error scopes and throws if WebGPU reported an error meanwhile: the
 * suite's context runs with validate: false (no error scope per submit), so a cell whose submits
 * were rejected would otherwise be timed as if its work had run (and read stale timestamps).
 */
async function gpuChecked<T>(device: GPUDevice, work: () => Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown;
  let failed = false;
  try {
    result = await work();
  } catch (e) {
    thrown = e;
    failed = true;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (failed) throw thrown;
  const error = validation ?? oom;
  if (error)
    throw new WebGpuReported(`WebGPU reported ${validation ? 'a validation error' : 'out of memory'}: ${error.message.split('\n')[0]}`);
  return result as T;
}

/** An error WebGPU reported inside gpuChecked: the work timed did not all run. */
class WebGpuReported extends Error {}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs the suite; resolves to the exit status (1 if any cell or section failed). */
async function main(): Promise<number> {
  const started = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  const session = await openSession(opts);
  try {
    const run = planRun(session);
    printHeader(run);
    await warmUp(run);
    const results = await measureOps(run);
    const peers = await measurePeers(run);
    const sections = await measureSections(run, results);
    const report = buildReport(run, started, results, peers, sections);
    writeReport(run, report);
    return exitStatus(run);
  } finally {
    closeSession(session);
  }
}

/** The adapter and what the run opens on it, closed together when the run ends (closeSession). */
interface Session {
  opts: Options;
  env: BenchEnv;
  timer: GpuTimer;
  /** The tf.dropout peer, once opened. */
  tf: TfPeer | null;
  /** The context of the ops forced onto the packed f16 path (packedCtx), once made. */
  packed?: DropoutContext;
}

/** A session with what the run measures (file name, ops, sizes, budgets) and the lists its stages add to. */
interface Run extends Session {
  slug: string;
  commit: string;
  name: string;
  ops: BenchOp[];
  sizes: number[];
  maxLog2: number;
  budget: TimingBudget;
  /** The budget of a cell that decides a target (isTargetCell). */
  targetBudget: TimingBudget;
  /** What was left out and why; the op cells add the sizes whose buffers do not fit. */
  skipped: string[];
  /** What failed (cells, peers, sections); any makes the exit status 1. */
  failures: string[];
}

/** Opens the adapter and the suite's timer on it. */
async function openSession(opts: Options): Promise<Session> {
  // The adapter choice, the 'webgpu' package and the adapter itself are configuration: their
  // errors are one line, like the command line's.
  const env = await openBenchEnv().catch((e: unknown) => {
    if (!(e instanceof DropoutError)) throw e;
    const choice = process.env[ADAPTER_ENV];
    throw new ConfigError(choice && !e.message.includes(ADAPTER_ENV) ? `${e.message} (${ADAPTER_ENV}=${choice})` : e.message);
  });
  const { ctx, device } = env;
  const timer = new GpuTimer(
    device,
    () => ctx.settled(),
    (encoder) => ctx.submitted(encoder),
  );
  return { opts, env, timer, tf: null };
}

/** Closes what the session opened: the tf peer, the packed-path context, the timer, the adapter. */
function closeSession(session: Session): void {
  session.tf?.dispose();
  session.packed?.destroy();
  session.timer.destroy();
  session.env.close();
}

/**
 * The context of the ops forced onto the packed f16 path (BenchOp.f16Path), made on first use,
 * with the suite context's workgroup size and launch tuning (so the rows differ in the path only).
 */
function packedCtx(session: Session): DropoutContext {
  const { ctx, device } = session.env;
  session.packed ??= new DropoutContext(device, {
    validate: false,
    seed: 0x5eedn,
    workgroupSize: ctx.workgroupSize,
    tuning: { ...ctx.tuning },
    f16Path: 'packed',
  });
  return session.packed;
}

/** What the run will measure, from the options and the adapter: refuses a --max the adapter cannot hold. */
function planRun(session: Session): Run {
  const { opts, env } = session;
  const { ctx, device } = env;
  const slug = adapterSlug(env.adapter);
  // The code measured is what was loaded at start: read the commit once, then.
  const commit = gitCommit();
  const name = opts.name ?? [slug, ...(opts.quick ? ['quick'] : []), ...(opts.subset ? ['subset'] : [])].join('-');
  // f16 runs on every adapter: natively with shader-f16, else on the packed path (ctx.f16Path).
  // Rows forced onto the packed path are left out where that is the context's own path anyway
  // (they would time the same kernels as the plain f16 rows).
  const samePath = (op: BenchOp) => op.f16Path === 'packed' && ctx.f16Path === 'packed';
  const ops = benchOps.filter((op) => !samePath(op) && (!opts.ops || opts.ops.some((p) => op.id.startsWith(p))));
  const skipped = benchOps.filter(samePath).map((op) => `${op.id}: the f16 rows already take the packed path here (no shader-f16)`);
  // The largest size at which an f32 buffer fits; ops whose copy reference needs larger buffers
  // skip (and list) the sizes where those do not fit.
  const largest = Math.floor(Math.log2(device.limits.maxBufferSize / 4));
  if (opts.max > largest) {
    throw new UsageError(
      `--max ${opts.max}: this adapter's maxBufferSize (${device.limits.maxBufferSize} bytes) holds at most 2^${largest} f32 elements; pass --max ${largest} or less`,
    );
  }
  const maxLog2 = opts.max;
  const sizes: number[] = [];
  for (let k = opts.min; k <= maxLog2; k += Math.max(1, opts.step)) sizes.push(k);
  if (sizes.at(-1) !== maxLog2 && maxLog2 >= opts.min) sizes.push(maxLog2);
  const budget: TimingBudget = {
    budgetMs: opts.budgetMs,
    sampleMs: opts.quick ? 5 : 25,
    minSamples: opts.quick ? 3 : 5,
    maxSamples: 15,
    maxReps: 256,
  };
  const targetBudget: TimingBudget = { ...budget, budgetMs: budget.budgetMs * 4, minSamples: opts.quick ? 3 : 11, maxSamples: 21 };
  // The same object as the session, so that what the stages open (the tf peer) is closed with it.
  return Object.assign(session, { slug, commit, name, ops, sizes, maxLog2, budget, targetBudget, skipped, failures: [] as string[] });
}

/** The run's first lines: the adapter, the f16 path, the timing method and the sizes. */
function printHeader(run: Run): void {
  const { opts, env, timer, sizes } = run;
  console.log(`webgpu-dropout bench on ${env.adapterName} (${env.icd}); f16 path: ${env.ctx.f16Path}`);
  console.log(
    `timing: ${timer.hasTimestamps ? 'timestamp-query' : 'wall time'}; sizes 2^${sizes[0]}..2^${sizes.at(-1)}${opts.quick ? '; quick mode' : ''}`,
  );
}

/** One untimed pass at the largest size first: page faults and shader compiles stay out of the cells. */
async function warmUp(run: Run): Promise<void> {
  progress('warming up ...');
  const warm = copyCell(run.env.ctx, 2 ** run.sizes.at(-1)!);
  await run.timer.sample(warm.record, 2);
  warm.dispose();
}

/** Every op at every size, printed and saved (savePartial) after each op; a failed cell is listed and the run goes on. */
async function measureOps(run: Run): Promise<OpResult[]> {
  const { ops, sizes, skipped, failures } = run;
  const { device } = run.env;
  const results: OpResult[] = [];
  const total = ops.length * sizes.length;
  let done = 0;
  for (const op of ops) {
    const result: OpResult = { id: op.id, label: op.label, kind: op.kind, dtype: op.dtype, bytesPerElement: op.bytesPerElement, cells: [] };
    for (const log2 of sizes) {
      const n = 2 ** log2;
      if (!fitsBuffers(op, log2, device.limits.maxBufferSize)) {
        skipped.push(`${op.id} at 2^${log2}: a buffer of ${largestBufferBytesPerElement(op)} bytes per element would exceed maxBufferSize`);
        done++;
        continue;
      }
      progress(`[${++done}/${total}] ${op.label} 2^${log2} ...`);
      try {
        result.cells.push(await gpuChecked(device, () => measureCell(run, op, n, log2)));
      } catch (e) {
        // One failed cell costs that cell, not the run (a GPU run should not be lost to one size).
        progressDone();
        console.error(`${op.label} 2^${log2} failed: ${messageOf(e)}`);
        result.failures ??= [];
        result.failures.push({ log2, message: messageOf(e) });
        failures.push(`${op.id} at 2^${log2}: ${messageOf(e)}`);
      }
    }
    results.push(result);
    progressDone();
    console.log(`\n${op.label}\n${opTable(result)}`);
    savePartial(run, results);
  }
  return results;
}

/**
 * After every op, the cells so far in <name>.partial.json (removed once the full report is
 * written): a run cut short (the GPU recipe's time limit) keeps what it measured.
 */
function savePartial(run: Run, results: OpResult[]): void {
  const { opts, env } = run;
  mkdirSync(opts.out, { recursive: true });
  const partial = {
    schema: 1,
    partial: true,
    date: new Date().toISOString(),
    commit: run.commit,
    adapter: { name: env.adapterName, slug: run.slug, icd: env.icd },
    ops: results,
  };
  writeFileSync(join(opts.out, `${run.name}.partial.json`), JSON.stringify(partial, null, 2) + '\n');
}

/** One op at one size, its samples interleaved with those of a copy over the same bytes. */
async function measureCell(run: Run, op: BenchOp, n: number, log2: number): Promise<CellResult> {
  const { ctx } = run.env;
  const bytes = op.bytesPerElement * n;
  const cell = withInjectedFault(op, op.setup(op.f16Path === 'packed' ? packedCtx(run) : ctx, n));
  // The copy reference over the same bytes, its samples interleaved with the op's.
  const copyWords = bytes > 0 ? copyWordsFor(bytes) : 0;
  const copy = copyWords ? copyCell(ctx, copyWords) : null;
  let t: Timing;
  let c: Timing | undefined;
  try {
    // A cell that decides a target gets more rounds: its verdict should not hang on 3 samples.
    const cellBudget = isTargetCell(run.env, op.id, log2) ? run.targetBudget : run.budget;
    [t, c] = (await run.timer.measureTogether(copy ? [cell.record, copy.record] : [cell.record], cellBudget)) as [Timing, Timing?];
  } finally {
    cell.dispose();
    copy?.dispose();
  }
  return cellResult(log2, bytes, t, c, copy ? copyWords * 8 : undefined);
}

/** The peers' rows, and why a peer could not be measured. */
interface PeerResults {
  rows: PeerRow[];
  errors: string[];
}

/** Peers, side by side: tf.dropout on the same device, then the plain-JS CPU reference (each unless skipped). */
async function measurePeers(run: Run): Promise<PeerResults> {
  const peers: PeerResults = { rows: [], errors: [] };
  const budgetMs = run.opts.quick ? 150 : 1500;
  if (run.opts.tf) await measureTfPeer(run, peers, budgetMs);
  if (run.opts.cpu) await measureCpuPeer(run, peers, budgetMs);
  progressDone();
  return peers;
}

/** tf.dropout (WebGPU backend) against our forward, and against our tfjs entry on the same tensors. */
async function measureTfPeer(run: Run, peers: PeerResults, peerBudget: number): Promise<void> {
  const { env, failures } = run;
  const { device } = env;
  const tfSizes = (run.opts.quick ? [16] : [16, 20, 24]).filter((k) => k <= run.maxLog2);
  try {
    const tf = await openTfPeer(env);
    run.tf = tf;
    for (const log2 of tfSizes) {
      progress(`peers: tf.dropout (WebGPU backend) 2^${log2} ...`);
      // The size a target judges gets more rounds: one tf.dropout call there takes most of a second on a CPU adapter.
      const t = await gpuChecked(device, () => tf.time(2 ** log2, peerBudget, log2 === 24 ? 7 : 3));
      const draw = await gpuChecked(device, () => tf.timeMaskDraw(2 ** log2, peerBudget / 2));
      const note = `of which the mask drawn by tf.randomUniform in JS: ${formatNs(draw.ns)} (${((draw.ns / t.peer.ns) * 100).toFixed(0)}%); then upload + add/floor/div/mul kernels`;
      peers.rows.push({
        peer: 'tf.dropout (tfjs-backend-webgpu)',
        log2,
        n: 2 ** log2,
        ns: t.peer.ns,
        calls: t.peer.calls,
        oursNs: t.ours.ns,
        ratio: t.ratio,
        ratioRange: t.ratioRange,
        note,
      });
      // The drop-in on the same tensors: tf.dropout against webgpu-dropout/tfjs's dropout (ours median = the tfjs entry).
      const e = await gpuChecked(device, () => tf.timeTfjsEntry(2 ** log2, peerBudget, log2 === 24 ? 7 : 3));
      peers.rows.push({
        peer: 'tf.dropout vs webgpu-dropout/tfjs (same tfjs tensors)',
        log2,
        n: 2 ** log2,
        ns: e.peer.ns,
        calls: e.peer.calls,
        oursNs: e.ours.ns,
        ratio: e.ratio,
        ratioRange: e.ratioRange,
        note: 'ours median: dropout() from webgpu-dropout/tfjs, tensor in, tensor out, recorded into the backend encoder',
      });
    }
  } catch (e) {
    peers.errors.push(`tf.dropout could not be measured: ${messageOf(e)}`);
    // tf.dropout missing is a note; a WebGPU error while timing (ours or tf's) fails the run.
    if (e instanceof WebGpuReported) failures.push(`peers: tf.dropout: ${messageOf(e)}`);
  }
}

/** The plain-JS CPU reference against our forward: the no-GPU baseline. */
async function measureCpuPeer(run: Run, peers: PeerResults, peerBudget: number): Promise<void> {
  const { env, failures } = run;
  const cpuSizes = (run.opts.quick ? [14] : [16, 20]).filter((k) => k <= run.maxLog2);
  for (const log2 of cpuSizes) {
    progress(`peers: CPU reference 2^${log2} ...`);
    let t: Awaited<ReturnType<typeof timeCpuReference>>;
    try {
      t = await gpuChecked(env.device, () => timeCpuReference(env, 2 ** log2, peerBudget));
    } catch (e) {
      peers.errors.push(`CPU reference at 2^${log2} could not be measured: ${messageOf(e)}`);
      failures.push(`peers: CPU reference at 2^${log2}: ${messageOf(e)}`);
      continue;
    }
    peers.rows.push({
      peer: 'CPU reference (plain JS, src/reference/dropout.ts)',
      log2,
      n: 2 ** log2,
      ns: t.peer.ns,
      calls: t.peer.calls,
      oursNs: t.ours.ns,
      ratio: t.ratio,
      ratioRange: t.ratioRange,
      note: 'no-GPU baseline, single thread: Philox on plain numbers, one call per 4 elements',
    });
  }
}

/** The memory and per-call overhead sections of the report. */
interface SectionResults {
  memory: MemoryRow[];
  overhead: OverheadRow[];
}

/** The memory and per-call overhead sections (each may fail on its own: see runSection). */
async function measureSections(run: Run, results: OpResult[]): Promise<SectionResults> {
  const { opts, env } = run;
  const memory = await runSection(run, 'memory', () => measureMemory(env, opts.quick ? 2 ** 16 : 2 ** 20), []);
  // The GPU row of the overhead table is the 2^10 forward cell; a run that starts above 2^10 (the GPU recipe) times one.
  const forward = benchOps.find((op) => op.id === 'dropout.forward.f32')!;
  const smallForward =
    results.find((r) => r.id === forward.id)?.cells.find((c) => c.log2 === 10) ??
    (await runSection(run, 'forward at 2^10 for the overhead table', () => measureCell(run, forward, 1024, 10), undefined));
  const overhead = await runSection(
    run,
    'per-call overhead',
    () => measureOverhead(env, opts.quick ? 50 : 400, opts.quick ? 1 : 5, smallForward),
    [],
  );
  progressDone();
  return { memory, overhead };
}

/** A section that fails is reported and the run goes on (its exit status says so). */
async function runSection<T>(run: Run, label: string, work: () => Promise<T>, fallback: T): Promise<T> {
  progress(`${label} ...`);
  try {
    if (injectedFaults('section').includes(label)) throw new Error('injected fault (WEBGPU_DROPOUT_BENCH_FAULT)');
    return await gpuChecked(run.env.device, work);
  } catch (e) {
    progressDone();
    console.error(`${label} failed: ${messageOf(e)}`);
    run.failures.push(`${label}: ${messageOf(e)}`);
    return fallback;
  }
}

/** The full report: the adapter, the options, every measurement, the stage notes and the targets. */
function buildReport(run: Run, started: number, results: OpResult[], peers: PeerResults, sections: SectionResults): BenchReport {
  const { opts, env, timer } = run;
  const { ctx, device } = env;
  const timingDescription = timer.hasTimestamps
    ? 'GPU timestamp queries (marker passes around many calls recorded into one command encoder, one submit), checked against the wall time of the same submit; a cell falls back to wall time (marked "wall") if any timestamp sample is outside (0, wall]'
    : 'wall time from submit to onSubmittedWorkDone around many calls recorded into one command encoder (the adapter has no timestamp-query)';
  const stages = stageNotes(results);
  const targets = checkTargets(env, results, peers.rows);
  return {
    schema: 1,
    date: new Date().toISOString(),
    commit: run.commit,
    node: process.version,
    adapter: {
      name: env.adapterName,
      slug: run.slug,
      icd: env.icd,
      features: [...device.features].sort(),
      tuning: { ...ctx.tuning },
      limits: {
        maxBufferSize: device.limits.maxBufferSize,
        maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
        maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      },
    },
    timing: { timestampQuery: timer.hasTimestamps, description: timingDescription },
    options: {
      quick: opts.quick,
      sizesLog2: run.sizes,
      p: P,
      cellBudgetMs: opts.budgetMs,
      ...(opts.ops ? { ops: opts.ops } : {}),
      peers: { tf: opts.tf, cpu: opts.cpu },
      subset: opts.subset,
    },
    skipped: run.skipped,
    failures: run.failures,
    ops: results,
    peers: peers.rows,
    peerErrors: peers.errors,
    memory: {
      rows: sections.memory,
      poolPeakBytes: ctx.pool.peakBytes,
      poolPeakNote: "largest bytes held at once by the context pool, in use and idle; dominated by the benchmark's own largest cell",
    },
    overhead: sections.overhead,
    stages,
    targets,
    elapsedSec: (performance.now() - started) / 1e3,
  };
}

/** Writes <name>.json and <name>.md, removes the partial file and prints the report from the peers on. */
function writeReport(run: Run, report: BenchReport): void {
  const { opts, name } = run;
  mkdirSync(opts.out, { recursive: true });
  const md = toMarkdown(report);
  writeFileSync(join(opts.out, `${name}.json`), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(opts.out, `${name}.md`), md + '\n');
  rmSync(join(opts.out, `${name}.partial.json`), { force: true });
  console.log(`\n${md.slice(md.indexOf('## Peers'))}`);
  console.log(`\nwrote ${join(opts.out, `${name}.json`)} and ${name}.md in ${report.elapsedSec.toFixed(0)} s`);
  if (opts.writeReference) console.log('these are the committed reference results: review and commit them');
}

/** Lists the failures, if any: exit status 1 with some, 0 without. */
function exitStatus(run: Run): number {
  const { failures } = run;
  if (failures.length) console.error(`\n${failures.length} failure(s): ${failures.join('; ')}`);
  return failures.length ? 1 : 0;
}

/**
 * The test hooks of the failure paths, from WEBGPU_DROPOUT_BENCH_FAULT (comma-separated):
 *   <op id prefix>    those ops also record a dispatch with no pipeline, which WebGPU rejects, as a
 *                     broken kernel's would be;
 *   throw:<prefix>    recording those ops throws;
 *   section:<label>   that report section ('memory', 'per-call overhead') throws.
 */
function injectedFaults(kind: 'invalid' | 'throw' | 'section'): string[] {
  const entries = (process.env.WEBGPU_DROPOUT_BENCH_FAULT ?? '').split(',').filter(Boolean);
  if (kind === 'invalid') return entries.filter((e) => !e.includes(':'));
  return entries.filter((e) => e.startsWith(`${kind}:`)).map((e) => e.slice(kind.length + 1));
}

function withInjectedFault<T extends { record: Recorder }>(op: BenchOp, cell: T): T {
  const matches = (prefixes: string[]) => prefixes.some((p) => op.id.startsWith(p));
  const [invalid, throws] = [matches(injectedFaults('invalid')), matches(injectedFaults('throw'))];
  if (!invalid && !throws) return cell;
  const record = cell.record;
  return Object.assign(cell, {
    record: async (encoder: GPUCommandEncoder) => {
      if (throws) throw new Error('injected fault (WEBGPU_DROPOUT_BENCH_FAULT)');
      await record(encoder);
      const pass = encoder.beginComputePass();
      pass.dispatchWorkgroups(1);
      pass.end();
    },
  });
}

/** Sentences on where the forward's time goes, from the stage variants (2^20 and up). */
function stageNotes(results: OpResult[]): string[] {
  const find = (id: string) => results.find((r) => r.id === id);
  const fwd = find('dropout.forward.f32');
  const noRng = find('stage.no_rng.f32');
  const rngOnly = find('stage.rng_only.f32');
  if (!fwd || !noRng || !rngOnly) return [];
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const notes: string[] = [];
  for (const c of fwd.cells.filter((c) => c.log2 >= 20)) {
    const a = noRng.cells.find((x) => x.n === c.n);
    const b = rngOnly.cells.find((x) => x.n === c.n);
    if (!a || !b || c.copyNs === undefined || a.ofCopy === undefined) continue;
    // The bytes-only variant at the copy roofline means the forward's shortfall is the Philox work.
    const verdict =
      a.ofCopy >= 0.85
        ? `the bytes + select alone run at the copy roofline, so the shortfall is arithmetic (Philox: ${pct(b.ns / c.ns)} of the forward's time when run alone)`
        : `the bytes + select alone already fall short of the copy, so bytes/select cost too, besides Philox (${pct(b.ns / c.ns)} of the forward's time alone)`;
    notes.push(
      `2^${c.log2}: forward ${formatNs(c.ns)} = ${pct(c.ofCopy ?? 0)} of copy (${formatNs(c.copyNs)}); without Philox ${formatNs(a.ns)} ` +
        `(${pct(a.ofCopy)} of copy); Philox alone ${formatNs(b.ns)}; the two stages alone sum to ${pct((a.ns + b.ns) / c.ns)} of the forward: ${verdict}.`,
    );
  }
  return notes;
}

/** The ops whose "of copy" a target judges (checkTargets), with the fraction each must reach: on
 * a CPU adapter at 2^24, on a GPU at 2^24 and above. */
const targetOps: { cpu: Record<string, number>; gpu: Record<string, number> } = {
  cpu: { 'dropout.forward.f32': 0.6 },
  gpu: {
    'dropout.forward.f32': 0.9,
    'dropout.backward.f32': 0.9,
    'dropout.forward+mask.f32': 0.9,
    'dropout.backward+mask.f32': 0.95,
    'dropout.forward.f16': 0.9,
    'dropout.backward.f16': 0.9,
  },
};
function isTargetCell(env: BenchEnv, id: string, log2: number): boolean {
  return onCpu(env) ? id in targetOps.cpu && log2 === 24 : id in targetOps.gpu && log2 >= 24;
}

function checkTargets(env: BenchEnv, results: OpResult[], peers: PeerRow[]): TargetRow[] {
  const cell = (id: string, log2: number) => results.find((r) => r.id === id)?.cells.find((c) => c.log2 === log2);
  const rows: TargetRow[] = [];
  const ofCopy = (id: string, log2: number, goal: number) => {
    const c = cell(id, log2);
    rows.push({
      target: `${id} at 2^${log2} >= ${goal * 100}% of copy`,
      measured: c?.ofCopy !== undefined ? `${(c.ofCopy * 100).toFixed(0)}%` : 'not measured',
      met: c?.ofCopy !== undefined ? c.ofCopy >= goal : null,
    });
  };
  if (onCpu(env)) {
    for (const [id, goal] of Object.entries(targetOps.cpu)) ofCopy(id, 24, goal);
    const tfRow = peers.find((p) => p.peer.startsWith('tf.dropout') && p.log2 === 24);
    rows.push({
      target: 'forward f32 at 2^24 >= 20x tf.dropout',
      measured: tfRow ? `${tfRow.ratio.toFixed(1)}×` : 'not measured',
      met: tfRow ? tfRow.ratio >= 20 : null,
    });
  } else {
    const big = [...new Set(results.flatMap((r) => r.cells.map((c) => c.log2)))].filter((k) => k >= 24);
    for (const [id, goal] of Object.entries(targetOps.gpu)) for (const k of big) ofCopy(id, k, goal);
    rows.push({
      target:
        'against torch and Triton (forward >= 1.1x torch, backward from bits >= 1.0x torch, forward >= 0.95x Triton randint4x, forward >= 1.0x torch at 2^20 and 2^22)',
      measured: 'see "Targets against the peers" in compare-<gpu>.md (bench/gpu/torch_triton.py, same GPU, same command)',
      met: null,
    });
  }
  return rows;
}

const exit = (code: number) => {
  process.exitCode = code;
  // Dawn can keep the event loop alive after the device is gone; do not hang CI.
  setTimeout(() => process.exit(code), 5000).unref();
};
main().then(
  (status) => exit(status),
  (e) => {
    progressDone();
    if (e instanceof UsageError)
      console.error(`bench: ${e.message} (the options are listed at the top of bench/run.ts and in bench/README.md)`);
    else if (e instanceof ConfigError) console.error(`bench: ${e.message}`);
    else console.error(e instanceof Error ? e.stack : e);
    exit(e instanceof UsageError || e instanceof ConfigError ? 2 : 1);
  },
);
