// The suite's results as data (JSON, for comparing commits) and as Markdown tables.
import { pairedRatio, type Timing } from './timing.js';

export interface CellResult extends Omit<Timing, 'series' | 'wallSeries'> {
  log2: number;
  n: number;
  elementsPerSec: number;
  /** Bytes read + written per second, GB/s (1e9). */
  gbPerSec: number;
  /** Copy kernel over the same bytes, ns (median), and copy time / op time (1 = as fast as the
   * copy): the median of the per-round ratios, with their quartiles in ofCopyRange. */
  copyNs?: number;
  ofCopy?: number;
  ofCopyRange?: [number, number];
  /** How the copy was timed (when its method differs from the op's, the rounds are paired by wall
   * time), and the bytes it moved per call (the op's, up to whole vec4s). */
  copy?: { method: Timing['method']; reps: number; samples: number; bytes?: number };
}

/** A cell's row from the op's timing and its copy reference's (timed in the same rounds). */
export function cellResult(log2: number, bytes: number, t: Timing, c?: Timing, copyBytes?: number): CellResult {
  const n = 2 ** log2;
  const paired = c ? pairedRatio(c, t) : undefined;
  return {
    log2,
    n,
    ns: t.ns,
    method: t.method,
    wallNs: t.wallNs,
    reps: t.reps,
    samples: t.samples,
    elementsPerSec: n / (t.ns * 1e-9),
    gbPerSec: bytes / t.ns,
    ...(t.rejected ? { rejected: t.rejected } : {}),
    ...(c && paired ? { copyNs: c.ns, ofCopy: paired.ratio, ofCopyRange: [paired.low, paired.high] as [number, number] } : {}),
    ...(c
      ? { copy: { method: c.method, reps: c.reps, samples: c.samples, ...(copyBytes !== undefined ? { bytes: copyBytes } : {}) } }
      : {}),
  };
}

/** A cell that could not be measured (an exception, or an error WebGPU reported during it). */
export interface CellFailure {
  log2: number;
  message: string;
}

export interface OpResult {
  id: string;
  label: string;
  kind: 'op' | 'stage';
  dtype: string;
  bytesPerElement: number;
  cells: CellResult[];
  failures?: CellFailure[];
}

export interface PeerRow {
  peer: string;
  log2: number;
  n: number;
  ns: number;
  calls: number;
  /** Ours, the same call measured the same way, ns. */
  oursNs: number;
  /** peer time / our time, the median of per-round ratios (one call of each per round): how many times faster ours is. */
  ratio: number;
  /** Quartiles of the per-round ratios. */
  ratioRange?: [number, number];
  note?: string;
}

export interface MemoryRow {
  what: string;
  bytesPerElement: number;
  source: 'measured' | 'by construction';
  note: string;
}

export interface OverheadRow {
  what: string;
  ns: number;
  note: string;
}

export interface TargetRow {
  target: string;
  measured: string;
  met: boolean | null;
}

export interface BenchReport {
  schema: 1;
  date: string;
  commit: string;
  node: string;
  adapter: {
    name: string;
    slug: string;
    icd: string;
    features: string[];
    limits: Record<string, number>;
    tuning?: Record<string, unknown>;
  };
  timing: { timestampQuery: boolean; description: string };
  options: {
    quick: boolean;
    sizesLog2: number[];
    p: number;
    cellBudgetMs: number;
    /** The --ops prefixes, when the run was limited to some ops. */
    ops?: string[];
    peers: { tf: boolean; cpu: boolean };
    /** True when ops, sizes or peers were left out (--ops, --min, --max, --step, --no-tf, --no-cpu). */
    subset: boolean;
  };
  /** Ops the adapter cannot run (f16 without shader-f16). */
  skipped: string[];
  /** Cells and sections that failed; the run then exits non-zero. */
  failures: string[];
  ops: OpResult[];
  peers: PeerRow[];
  peerErrors: string[];
  memory: { rows: MemoryRow[]; poolPeakBytes: number; poolPeakNote: string };
  overhead: OverheadRow[];
  stages: string[];
  targets: TargetRow[];
  elapsedSec: number;
}

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

export function formatRate(perSec: number): string {
  if (!Number.isFinite(perSec) || perSec <= 0) return '-';
  const units = ['', 'k', 'M', 'G', 'T'];
  let u = 0;
  while (perSec >= 1000 && u < units.length - 1) {
    perSec /= 1000;
    u++;
  }
  return `${perSec.toFixed(perSec < 10 ? 2 : perSec < 100 ? 1 : 0)} ${units[u]}`;
}

function pct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(0)}%`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function bytesLabel(b: number): string {
  return b === 0 ? 'no bytes' : `${Number.isInteger(b) ? b : b.toFixed(3)} B/element`;
}

export function opTable(op: OpResult): string {
  return table(
    ['elements', 'median', 'elements/s', 'GB/s', 'of copy', 'timing'],
    op.cells
      .map((c) => [
        `2^${c.log2}`,
        formatNs(c.ns),
        formatRate(c.elementsPerSec),
        op.bytesPerElement ? c.gbPerSec.toFixed(2) : '-',
        c.ofCopyRange ? `${pct(c.ofCopy)} (${pct(c.ofCopyRange[0]).slice(0, -1)}-${pct(c.ofCopyRange[1])})` : pct(c.ofCopy),
        `${c.method} (${c.samples}×${c.reps})${c.copy && c.copy.method !== c.method ? `; copy ${c.copy.method}, paired by wall time` : ''}`,
      ])
      .concat((op.failures ?? []).map((f) => [`2^${f.log2}`, `**failed**: ${f.message}`, '', '', '', ''])),
  );
}

export function toMarkdown(r: BenchReport): string {
  const out: string[] = [];
  out.push(`# webgpu-dropout benchmark: ${r.adapter.name}`);
  out.push('');
  out.push(
    `- date: ${r.date}, commit: ${r.commit}, Node ${r.node}${r.options.quick ? ', **quick mode**' : ''}, took ${r.elapsedSec.toFixed(0)} s`,
  );
  out.push(`- adapter: ${r.adapter.name} (ICD: ${r.adapter.icd})`);
  if (r.adapter.tuning)
    out.push(
      `- launch tuning: ${Object.entries(r.adapter.tuning)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} (the context's choice for this adapter unless WEBGPU_DROPOUT_TUNING set it)`,
    );
  out.push(`- timing: ${r.timing.description}`);
  out.push(
    `- p = ${r.options.p}; sizes 2^${r.options.sizesLog2[0]} to 2^${r.options.sizesLog2.at(-1)} elements; ~${r.options.cellBudgetMs} ms of samples per cell`,
  );
  if (r.options.subset) {
    const peers = Object.entries(r.options.peers)
      .filter(([, on]) => !on)
      .map(([peer]) => peer);
    out.push(
      `- **subset run**: ${r.options.ops ? `ops starting with ${r.options.ops.join(', ')}` : 'all ops'}${peers.length ? `; peers left out: ${peers.join(', ')}` : ''}; not comparable to a full run's tables as a whole`,
    );
  }
  if (r.skipped.length) out.push(`- skipped: ${r.skipped.join('; ')}`);
  if (r.failures.length) out.push(`- **failures** (the run exited non-zero): ${r.failures.join('; ')}`);
  out.push(
    '- columns: median time of one call; elements/s; GB/s counts bytes read + written; "of copy" = time of a plain vec4 copy kernel over the same bytes / time of the op, so 100% = at the copy roofline; the copy is timed in the same cell, one copy sample right after each op sample, and the column gives the median of these per-round ratios (their quartiles in brackets); "timing" gives samples × calls per sample',
  );
  out.push('');
  if (r.targets.length) {
    out.push('## Targets');
    out.push('');
    out.push(
      table(
        ['target', 'measured', 'met'],
        r.targets.map((t) => [t.target, t.measured, t.met === null ? 'n/a' : t.met ? 'yes' : '**no**']),
      ),
    );
    out.push('');
    if (r.targets.some((t) => t.met === false)) {
      out.push(
        'Where a target is missed: "Where the time goes" below times the forward with a stage left out (arithmetic vs bytes), and the Peers note splits tf.dropout\'s time.',
      );
      out.push('');
    }
  }
  out.push('## Ops');
  for (const op of r.ops.filter((o) => o.kind === 'op')) {
    out.push('');
    out.push(`### ${op.label} (${bytesLabel(op.bytesPerElement)})`);
    out.push('');
    out.push(opTable(op));
  }
  out.push('');
  out.push('## Peers (same process, same GPUDevice)');
  out.push('');
  out.push(
    'Each peer call and ours are timed alike: one call on data already resident (GPU buffers for the GPU peers, a Float32Array for the CPU reference), flushed, until the GPU queue is idle (onSubmittedWorkDone), in rounds of one peer call and one of ours. Ratio = the median of the per-round ratios peer time / our time (their quartiles in brackets); the medians are shown beside it.',
  );
  out.push('');
  out.push(
    table(
      ['peer', 'elements', 'peer median', 'ours median', 'ours is faster by', 'calls', 'note'],
      r.peers.map((p) => [
        p.peer,
        `2^${p.log2}`,
        formatNs(p.ns),
        formatNs(p.oursNs),
        `${p.ratio.toFixed(1)}×${p.ratioRange ? ` (${p.ratioRange[0].toFixed(1)}-${p.ratioRange[1].toFixed(1)})` : ''}`,
        String(p.calls),
        p.note ?? '',
      ]),
    ),
  );
  for (const e of r.peerErrors) out.push(`\n- ${e}`);
  out.push('');
  out.push('## Memory kept between forward and backward');
  out.push('');
  out.push(
    table(
      ['what', 'bytes / element', 'source', 'note'],
      r.memory.rows.map((m) => [m.what, String(m.bytesPerElement), m.source, m.note]),
    ),
  );
  out.push('');
  out.push(`Buffer pool peak over the whole run: ${(r.memory.poolPeakBytes / 2 ** 20).toFixed(1)} MiB (${r.memory.poolPeakNote}).`);
  out.push('');
  out.push('## Per-call overhead (small tensors)');
  out.push('');
  out.push(
    table(
      ['what', 'per op', 'note'],
      r.overhead.map((o) => [o.what, formatNs(o.ns), o.note]),
    ),
  );
  out.push('');
  const stages = r.ops.filter((o) => o.kind === 'stage');
  if (stages.length) {
    out.push('## Where the time goes (dropout forward f32 with a stage left out)');
    out.push('');
    for (const s of r.stages) out.push(`- ${s}`);
    for (const op of stages) {
      out.push('');
      out.push(`### ${op.label} (${bytesLabel(op.bytesPerElement)})`);
      out.push('');
      out.push(opTable(op));
    }
    out.push('');
  }
  return out.join('\n');
}
