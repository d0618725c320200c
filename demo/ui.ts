// Small DOM helpers shared by the panels: typed element lookup, panel state, slider read-outs and
// a runner that keeps at most one GPU computation per panel in flight (the latest request wins).

export type PanelState = 'waiting' | 'running' | 'ready' | 'unavailable' | 'error';

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: missing element #${id}`);
  return el as T;
}

export function canvas2d(id: string): { canvas: HTMLCanvasElement; g: CanvasRenderingContext2D } {
  const canvas = byId<HTMLCanvasElement>(id);
  const g = canvas.getContext('2d');
  if (!g) throw new Error('demo: no 2-D canvas context');
  return { canvas, g };
}

export class Panel {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;

  constructor(readonly name: string) {
    this.root = byId(`panel-${name}`);
    this.status = byId(`${name}-status`);
  }

  set(state: PanelState, message = ''): void {
    this.root.dataset.state = state;
    this.status.textContent = message;
  }

  /** Shows a failure in the panel (and the console, so it is never silent). */
  fail(error: unknown): void {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`[${this.name} panel]`, error);
    this.set('error', `Failed: ${message}`);
  }

  /** Disables the panel's controls. */
  disable(): void {
    for (const el of this.root.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLSelectElement>('input, button, select')) el.disabled = true;
  }
}

/** A range input with its <output>: `format` writes the read-out, `onInput` fires on every move. */
export function slider(id: string, format: (v: number) => string, onInput: () => void): () => number {
  const input = byId<HTMLInputElement>(id);
  const out = byId<HTMLOutputElement>(`${id}-value`);
  const read = () => Number(input.value);
  const show = () => {
    out.value = format(read());
  };
  show();
  input.addEventListener('input', () => {
    show();
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

/**
 * Runs GPU jobs of all panels one at a time, in request order, so that the speed panel times its
 * kernels alone and a long training run yields to the other panels between its steps.
 */
export function gpuTurn<T>(job: () => Promise<T>): Promise<T> {
  const result = gpuQueue.then(job, job);
  gpuQueue = result.catch(() => undefined);
  return result;
}
