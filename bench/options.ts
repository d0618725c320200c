// The benchmark's command line (documented at the top of bench/run.ts and in bench/README.md),
// parsed without side effects so the tests can check every option directly.
import { resolve } from 'node:path';
import { benchOps } from './ops.js';

/** Where a run's files go by default: git-ignored, so a user's run leaves the checkout clean. */
export const LOCAL_OUT = 'bench/results/local';
/** The committed reference results, written only with --write-reference. */
export const REFERENCE_OUT = 'bench/results';

export interface Options {
  quick: boolean;
  out: string;
  /** --write-reference: a full run that refreshes the committed files in bench/results/. */
  writeReference: boolean;
  name?: string;
  min: number;
  max: number;
  step: number;
  budgetMs: number;
  ops?: string[];
  tf: boolean;
  cpu: boolean;
  /** Ops, sizes or peers were left out. */
  subset: boolean;
}

/** A bad command line: printed without a stack, with where the options are listed; exit 2. */
export class UsageError extends Error {}

/** A bad environment (the adapter, a missing package): printed in one line without a stack; exit 2. */
export class ConfigError extends Error {}

export function parseArgs(argv: string[]): Options {
  const args = argv.filter((a) => a !== '--');
  const takesValue = new Set(['--out', '--name', '--min', '--max', '--step', '--budget', '--ops']);
  const switches = new Set(['--quick', '--no-tf', '--no-cpu', '--write-reference']);
  const values = new Map<string, string>();
  const on = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (takesValue.has(a)) {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${a} needs a value`);
      values.set(a, v);
    } else if (switches.has(a)) {
      on.add(a);
    } else {
      throw new UsageError(
        a.startsWith('--') ? `unknown option ${a}` : `unexpected argument ${JSON.stringify(a)} (options start with --, e.g. --quick)`,
      );
    }
  }
  const quick = on.has('--quick');
  const int = (flag: string, dflt: number) => {
    const v = values.get(flag);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag}: expected a whole number, got ${v}`);
    return n;
  };
  const min = int('--min', 10);
  const max = int('--max', quick ? 20 : 26);
  const step = int('--step', quick ? 5 : 2);
  if (min < 10) throw new UsageError('--min: sizes start at 2^10 (the structured ops build shapes of 1024-element rows)');
  if (min > max) throw new UsageError(`--min ${min} is above --max ${max}: no sizes to run`);
  if (step < 1) throw new UsageError('--step: expected at least 1');
  const ops = values.get('--ops')?.split(',').filter(Boolean);
  const unknown = ops?.filter((prefix) => !benchOps.some((op) => op.id.startsWith(prefix))) ?? [];
  if (unknown.length)
    throw new UsageError(`--ops: no op id starts with ${unknown.join(', ')}; the ops are ${benchOps.map((op) => op.id).join(', ')}`);
  // --budget changes precision, not coverage: such a run is still a full run.
  const subset = ['--ops', '--min', '--max', '--step'].some((f) => values.has(f)) || on.has('--no-tf') || on.has('--no-cpu');
  const writeReference = on.has('--write-reference');
  if (writeReference) {
    const clash = [
      ...(quick ? ['--quick'] : []),
      ...['--out', '--name', '--ops', '--min', '--max', '--step'].filter((f) => values.has(f)),
      ...['--no-tf', '--no-cpu'].filter((f) => on.has(f)),
    ];
    if (clash.length)
      throw new UsageError(
        `--write-reference refreshes the committed full-run results in ${REFERENCE_OUT}/ and takes no ${clash.join(', ')}`,
      );
  }
  return {
    quick,
    out: resolve(values.get('--out') ?? (writeReference ? REFERENCE_OUT : LOCAL_OUT)),
    writeReference,
    name: values.get('--name'),
    min,
    max,
    step,
    budgetMs: int('--budget', quick ? 60 : 300),
    ops,
    tf: !on.has('--no-tf'),
    cpu: !on.has('--no-cpu'),
    subset,
  };
}
