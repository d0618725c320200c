// Small DOM helpers shared by the panels: typed element lookup, panel state, slider read-outs, a
// runner that keeps at most one GPU computation per panel in flight (the latest request wins) and
// the queue that gives the panels the GPU one job at a time.
import { fitToDisplay } from './plot.js';

export type PanelState = 'waiting' | 'running' | 'ready' | 'unavailable' | 'error';

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: missing element #${id}`);
  return el as T;
}

/** A 2-D canvas drawn in CSS pixels, its bitmap sized to its display (see `fitToDisplay`). */
export function canvas2d(id: string, height?: (width: number) => number): { canvas: HTMLCanvasElement; g: CanvasRenderingContext2D } {
  const canvas = byId<HTMLCanvasElement>(id);
  const g = canvas.getContext('2d');
  if (!g) throw new Error('demo: no 2-D canvas context');
  fitToDisplay(canvas, height);
  return { canvas, g };
}

/** Set once the page cannot compute any more (no WebGPU, or the device was lost). */
let halted = false;

/**
 * Stops every panel for good: from now on only 'unavailable' reaches a panel's status, failures of
 * work still in flight are expected and stay quiet, and nothing re-enables a control.
 */
export function haltPanels(): void {
  halted = true;
}

const WAITING_FOR_BENCHMARK = "Waiting for the benchmark's current batch (the GPU runs one job at a time)…";

type Control = HTMLInputElement | HTMLButtonElement | HTMLSelectElement;

export class Panel {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  /** The status to show again when a wait for the benchmark ends. */
  private beforeWait: string | null = null;

  constructor(readonly name: string) {
    this.root = byId(`panel-${name}`);
    this.status = byId(`${name}-status`);
  }

  /** The status that `busy` will show if its work is still running when its delay ends. */
  private pendingBusy: { message: string; timer: ReturnType<typeof setTimeout> } | null = null;

  /** Sets the state and the status (a polite live region: only set it on real changes). */
  set(state: PanelState, message = ''): void {
    if (halted && state !== 'unavailable') return;
    this.beforeWait = null;
    this.cancelBusy();
    this.root.dataset.state = state;
    // Rewriting the same text would make a screen reader announce it again.
    if (this.status.textContent !== message) this.status.textContent = message;
  }

  /**
   * Marks the panel running at once, but puts `message` in the live status only if the work is
   * still running after `afterMs`: a quick recomputation (a slider move) then announces its result
   * alone, not "computing" and then the result.
   */
  busy(message: string, afterMs = 400): void {
    if (halted) return;
    this.beforeWait = null;
    this.cancelBusy();
    this.root.dataset.state = 'running';
    this.pendingBusy = { message, timer: setTimeout(() => this.set('running', message), afterMs) };
  }

  private cancelBusy(): void {
    if (this.pendingBusy) clearTimeout(this.pendingBusy.timer);
    this.pendingBusy = null;
  }

  /** Progress (epochs, steps) goes to a plain element, not to the live status. */
  progress(text: string): void {
    const el = document.getElementById(`${this.name}-progress`);
    if (el) el.textContent = text;
  }

  /** Shows a failure in the panel (and the console, so it is never silent). */
  fail(error: unknown): void {
    if (halted) return;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`[${this.name} panel]`, error);
    this.set('error', `Failed: ${message}`);
  }

  /** Says the panel's next GPU job is queued behind the benchmark. */
  waitForBenchmark(): void {
    if (halted || this.beforeWait !== null) return;
    // A busy status not shown yet is what the panel is doing, so it is what comes back after the wait.
    const previous = this.pendingBusy?.message ?? this.status.textContent ?? '';
    this.set('running', WAITING_FOR_BENCHMARK);
    this.beforeWait = previous;
  }

  /** Ends a wait: the status the panel had before it comes back (unless it changed meanwhile). */
  endWait(): void {
    if (this.beforeWait === null) return;
    const previous = this.beforeWait;
    this.beforeWait = null;
    if (this.status.textContent === WAITING_FOR_BENCHMARK) this.set('running', previous);
  }

  /** The panel's inputs, buttons and selects, or the ones given. */
  private controls(only: readonly Control[]): readonly Control[] {
    return only.length ? only : [...this.root.querySelectorAll<Control>('input, button, select')];
  }

  /** Disables the panel's controls (all of them, or the ones given). */
  disable(...only: Control[]): void {
    for (const el of this.controls(only)) el.disabled = true;
  }

  /**
   * Enables the panel's controls (all of them, or the ones given). They start disabled in the
   * HTML, so a click before the panel listens is never lost; after a halt they stay disabled.
   */
  enable(...only: Control[]): void {
    if (halted) return;
    for (const el of this.controls(only)) el.disabled = false;
  }
}

/**
 * The page's shareable state: `key=value` pairs in the URL's hash (slider positions, modes, the
 * training step), written as they change and read when the page starts.
 */
export const urlState = {
  get(key: string): string | null {
    return new URLSearchParams(location.hash.slice(1)).get(key);
  },
  set(key: string, value: string): void {
    const q = new URLSearchParams(location.hash.slice(1));
    q.set(key, value);
    history.replaceState(null, '', `#${q.toString()}`);
  },
};

/**
 * Checks the radio of group `name` whose value the URL names (if any), and writes the group's
 * value to the URL whenever it changes.
 */
export function radioFromUrl(name: string): void {
  const wanted = urlState.get(name);
  const radios = [...document.querySelectorAll<HTMLInputElement>(`input[name="${name}"]`)];
  const match = radios.find((r) => r.value === wanted);
  if (match) match.checked = true;
  for (const r of radios) r.addEventListener('change', () => urlState.set(name, r.value));
}

/**
 * A range input with its <output>: `format` writes the read-out, `onInput` fires on every move.
 * Its position comes from the URL when the URL names it (clamped to the range by the browser) and
 * goes to the URL on every move.
 */
export function slider(id: string, format: (v: number) => string, onInput: () => void): () => number {
  const input = byId<HTMLInputElement>(id);
  const out = byId<HTMLOutputElement>(`${id}-value`);
  const fromUrl = urlState.get(id);
  if (fromUrl !== null && Number.isFinite(Number(fromUrl))) input.value = fromUrl;
  const read = () => Number(input.value);
  const show = () => {
    out.value = format(read());
  };
  show();
  input.addEventListener('input', () => {
    show();
    urlState.set(id, input.value);
    onInput();
  });
  return read;
}

/**
 * Runs `work` on request, one run at a time: requests that arrive during a run collapse into one
 * follow-up run with the latest inputs. `run()` resolves when the work it asked for is done.
 */
export function latestWins(work: () => Promise<void>, onError: (e: unknown) => void): () => Promise<void> {
  let running: Promise<void> | null = null;
  let again = false;
  const loop = async () => {
    do {
      again = false;
      try {
        await work();
      } catch (e) {
        onError(e);
      }
    } while (again);
    running = null;
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = loop();
    return running;
  };
}

export function fmt(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

export function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Writes `text` into #id and keeps the raw number in data-value for tests and screen readers. */
export function showValue(id: string, text: string, value?: number | readonly number[]): void {
  const el = byId(id);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = Array.isArray(value) ? value.join(',') : String(value);
}

let gpuQueue: Promise<unknown> = Promise.resolve();
/** Benchmarks queued or running: a job requested now runs after them. */
let benchmarksAhead = 0;

/**
 * Runs GPU jobs of all panels one at a time, in request order, so that the speed panel times its
 * kernels alone and a long training run yields to the other panels between its steps. `owner` is
 * the panel asking: while it waits behind a benchmark batch its status says so. The benchmark
 * passes 'benchmark' for each of its batches (it yields between them).
 */
export function gpuTurn<T>(job: () => Promise<T>, owner?: Panel | 'benchmark'): Promise<T> {
  const isBenchmark = owner === 'benchmark';
  const waiting = owner instanceof Panel && benchmarksAhead > 0 ? owner : null;
  waiting?.waitForBenchmark();
  const start = () => {
    waiting?.endWait();
    return job();
  };
  if (isBenchmark) benchmarksAhead++;
  const result = gpuQueue.then(start, start);
  gpuQueue = result.catch(() => undefined);
  if (isBenchmark) void gpuQueue.then(() => benchmarksAhead--);
  return result;
}
