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

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export class GpuTimer {
  private readonly querySet: GPUQuerySet | null;
  private readonly resolveBuffer: GPUBuffer | null;
  private readonly readBuffer: GPUBuffer | null;

  constructor(private readonly device: GPUDevice) {
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
    await this.device.queue.onSubmittedWorkDone();
    const wallNs = (performance.now() - t0) * 1e6;
    if (!qs) return [NaN, wallNs];
    await this.readBuffer!.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(this.readBuffer!.getMappedRange().slice(0));
    this.readBuffer!.unmap();
    return [Number(stamps[1]! - stamps[0]!), wallNs];
  }

  /** Times one op: a warm-up submit, a calibration submit, then samples sized to the budget. */
  async measure(record: Recorder, budget: TimingBudget): Promise<Timing> {
    await this.sample(record, 1); // compiles pipelines, touches the buffers' pages
    const [ts1, wall1] = await this.sample(record, 1);
    const once = Math.max(sane(ts1, wall1) ? ts1 : wall1, 1e3);
    const reps = clamp(Math.round((budget.sampleMs * 1e6) / once), 1, budget.maxReps);
    const samples = clamp(Math.floor((budget.budgetMs * 1e6) / (once * reps)), budget.minSamples, budget.maxSamples);
    const tsPer: number[] = [];
    const wallPer: number[] = [];
    let insane = 0;
    for (let s = 0; s < samples; s++) {
      const [ts, wall] = await this.sample(record, reps);
      wallPer.push(wall / reps);
      if (sane(ts, wall)) tsPer.push(ts / reps);
      else insane++;
    }
    const wallNs = median(wallPer);
    if (this.hasTimestamps && insane === 0) return { ns: median(tsPer), method: 'timestamp', wallNs, reps, samples };
    const rejected = this.hasTimestamps ? `${insane}/${samples} timestamp samples outside (0, wall]` : undefined;
    return { ns: wallNs, method: 'wall', wallNs, reps, samples, ...(rejected ? { rejected } : {}) };
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
