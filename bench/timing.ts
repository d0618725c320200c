// How one benchmark cell is timed. Many repetitions of an op are recorded into one command
// encoder and submitted once. With 'timestamp-query' two empty marker passes carry the
// timestamps (beginning of the first, end of the last), so the ops themselves are recorded
// exactly as a user records them; the wall time from submit to onSubmittedWorkDone is taken
// too and used instead whenever the timestamps are not sane against it.

export type TimingMethod = 'timestamp' | 'wall';

export interface Timing {
  /** Median time of one repetition, in nanoseconds. */
  ns: number;
  method: TimingMethod;
  /** Median wall time of one repetition (submit to onSubmittedWorkDone / reps), in nanoseconds. */
  wallNs: number;
  reps: number;
  samples: number;
  /** Why timestamps were not used, when they were available but rejected. */
  rejected?: string;
  /** Per-call time of each sample, in the order taken (the `method` series); with measureTogether,
   * sample i of every op comes from the same round, which pairedRatio relies on. */
  series: number[];
  /** Per-call wall time of each sample, in the same order. */
  wallSeries: number[];
}

export interface TimingBudget {
  /** Time to spend on one cell's timed samples, in ms (a cell always gets at least minSamples). */
  budgetMs: number;
  /** Aim for one sample (one submit) of about this long, in ms. */
  sampleMs: number;
  minSamples: number;
  maxSamples: number;
  maxReps: number;
}

/** Records one repetition of the op into `encoder`. */
export type Recorder = (encoder: GPUCommandEncoder) => Promise<void> | void;

/** The q-quantile, interpolating linearly between order statistics. */
export function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const i = Math.floor(at);
  return i + 1 < s.length ? s[i]! + (s[i + 1]! - s[i]!) * (at - i) : s[i]!;
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/**
 * reference time / op time, round by round, for two timings from one measureTogether: the median
 * and the quartiles of the per-round ratios. A load change on a shared machine (other processes on a
 * CPU adapter) moves both members of a round alike, so the ratio is steadier than the ratio of
 * the two medians. Timings by different methods are paired by their wall times.
 */
export function pairedRatio(reference: Timing, op: Timing): { ratio: number; low: number; high: number } {
  const same = reference.method === op.method;
  const ref = same ? reference.series : reference.wallSeries;
  const own = same ? op.series : op.wallSeries;
  const ratios = own.map((t, i) => ref[i]! / t).filter((r) => Number.isFinite(r));
  if (ratios.length === 0) return { ratio: NaN, low: NaN, high: NaN };
  return { ratio: median(ratios), low: quantile(ratios, 0.25), high: quantile(ratios, 0.75) };
}

export class GpuTimer {
  private readonly querySet: GPUQuerySet | null;
  private readonly resolveBuffer: GPUBuffer | null;
  private readonly readBuffer: GPUBuffer | null;

  /** `settle` resolves once pipelines compiling in the background are ready (DropoutContext.settled),
   * so an op's samples all run its final pipeline, not the generic one it starts on; `submitted`
   * hears of each sample's encoder after its submit (DropoutContext.submitted: temporaries back to the pool). */
  constructor(
    private readonly device: GPUDevice,
    private readonly settle: () => Promise<void> = async () => {},
    private readonly submitted: (encoder: GPUCommandEncoder) => void = () => {},
  ) {
    const ts = device.features.has('timestamp-query');
    this.querySet = ts ? device.createQuerySet({ type: 'timestamp', count: 2, label: 'bench timestamps' }) : null;
    this.resolveBuffer = ts ? device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
    this.readBuffer = ts ? device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : null;
  }

  get hasTimestamps(): boolean {
    return this.querySet !== null;
  }

  /** One submit of `reps` repetitions: [timestamp ns or NaN, wall ns], both for all reps together. */
  async sample(record: Recorder, reps: number): Promise<[number, number]> {
    const encoder = this.device.createCommandEncoder({ label: 'bench sample' });
    const qs = this.querySet;
    if (qs) encoder.beginComputePass({ label: 'start marker', timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0 } }).end();
    for (let r = 0; r < reps; r++) await record(encoder);
    if (qs) {
      encoder.beginComputePass({ label: 'end marker', timestampWrites: { querySet: qs, endOfPassWriteIndex: 1 } }).end();
      encoder.resolveQuerySet(qs, 0, 2, this.resolveBuffer!, 0);
      encoder.copyBufferToBuffer(this.resolveBuffer!, 0, this.readBuffer!, 0, 16);
    }
    const commands = encoder.finish();
    const t0 = performance.now();
    this.device.queue.submit([commands]);
    this.submitted(encoder);
    await this.device.queue.onSubmittedWorkDone();
    const wallNs = (performance.now() - t0) * 1e6;
    if (!qs) return [NaN, wallNs];
    await this.readBuffer!.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(this.readBuffer!.getMappedRange().slice(0));
    this.readBuffer!.unmap();
    return [Number(stamps[1]! - stamps[0]!), wallNs];
  }

  /** Times one op: a warm-up submit, three calibration submits, then samples sized to the budget. */
  async measure(record: Recorder, budget: TimingBudget): Promise<Timing> {
    const [t] = await this.measureTogether([record], budget);
    return t!;
  }

  /**
   * Times several ops (an op and its copy reference) with their samples interleaved, so that a
   * change in machine load during the cell (other processes on a CPU adapter) hits them alike.
   * Each gets a warm-up and three calibration submits; the budget is shared.
   */
  async measureTogether(records: Recorder[], budget: TimingBudget): Promise<Timing[]> {
    const plans: { record: Recorder; reps: number; ts: number[]; wall: number[]; insane: number }[] = [];
    let perRound = 0;
    for (const record of records) {
      // The warm-up compiles pipelines and touches the buffers' pages; an op slower than a few
      // samples' worth gets no separate calibration (its warm-up time sizes it: it runs one call
      // per sample either way), to save time. Others are sized by the fastest of three calibration
      // samples: samples just after the warm-up are often slow outliers (on a loaded CPU adapter
      // two of three can be), and sizing from one left small sizes with a call or two per sample,
      // whose fixed per-submit cost (the marker passes, about 20 us on lavapipe) then inflated the
      // time per call. No sample is ever faster than the call itself.
      const [ts0, wall0] = await this.sample(record, 1);
      await this.settle();
      const slow = wall0 > 4 * budget.sampleMs * 1e6;
      const calibration = slow
        ? [[ts0, wall0] as const]
        : [await this.sample(record, 1), await this.sample(record, 1), await this.sample(record, 1)];
      const once = Math.max(Math.min(...calibration.map(([ts, wall]) => (sane(ts, wall) ? ts : wall))), 1e3);
      // Calls under a millisecond get at least 8 per sample, whatever the calibration said.
      const reps = clamp(Math.round((budget.sampleMs * 1e6) / once), once < 1e6 ? Math.min(8, budget.maxReps) : 1, budget.maxReps);
      plans.push({ record, reps, ts: [], wall: [], insane: 0 });
      perRound += once * reps;
    }
    // Cells far over budget (large sizes on a CPU adapter) settle for 3 samples.
    const minSamples = perRound > 2 * budget.budgetMs * 1e6 ? Math.min(3, budget.minSamples) : budget.minSamples;
    const samples = clamp(Math.floor((budget.budgetMs * 1e6) / perRound), minSamples, budget.maxSamples);
    for (let s = 0; s < samples; s++) {
      for (const plan of plans) {
        const [ts, wall] = await this.sample(plan.record, plan.reps);
        plan.wall.push(wall / plan.reps);
        if (sane(ts, wall)) plan.ts.push(ts / plan.reps);
        else plan.insane++;
      }
    }
    return plans.map(({ reps, ts, wall, insane }) => {
      const wallNs = median(wall);
      if (this.hasTimestamps && insane === 0)
        return { ns: median(ts), method: 'timestamp' as const, wallNs, reps, samples, series: ts, wallSeries: wall };
      const rejected = this.hasTimestamps ? `${insane}/${samples} timestamp samples outside (0, wall]` : undefined;
      return {
        ns: wallNs,
        method: 'wall' as const,
        wallNs,
        reps,
        samples,
        series: wall,
        wallSeries: wall,
        ...(rejected ? { rejected } : {}),
      };
    });
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
    this.readBuffer?.destroy();
  }
}

/** GPU time can't be zero or negative, nor exceed the wall time around the same submit (5% + 50 us slack). */
function sane(tsNs: number, wallNs: number): boolean {
  return Number.isFinite(tsNs) && tsNs > 0 && tsNs <= wallNs * 1.05 + 5e4;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
