// Panel 1: drop neurons by hand. A layer of 12 neurons goes through dropout on the GPU and feeds
// a next layer (6 ReLU units) and an output, also on the GPU (an MLP whose first layer is the next
// layer; see toggleNetwork). Each training step draws the mask of stream = step with
// bernoulliMask; a click flips one neuron of the current step's mask, and the masked layer is
// recomputed by the library's dropout kernel reading that packed mask (dropoutBackward's mask
// path: out = x * keep / (1 - p)), then the network's forward pass runs on the result.
import { bernoulliMask, type DropoutContext, type DropoutState, dropoutBackward, readArray } from '../../src/index.js';
import { MLP, readMatrix, uploadMatrix } from '../../src/model.js';
import { applyKeepMask, packMask, referenceKeepMask, referenceMlpForward } from '../../src/reference.js';
import { TOGGLE_NEURONS, TOGGLE_NEXT, toggleNetwork } from '../data.js';
import { clear, colors, paint, size } from '../plot.js';
import { byId, canvas2d, fmt, gpuTurn, latestWins, Panel, radioFromUrl, showValue, slider, urlState } from '../ui.js';

export type DropoutKind = 'inverted' | 'classic';

const SEED = 11n;
/** The layer plot's fixed value axis: 0 to Y_MAX, whatever p is (taller bars are capped and marked). */
export const TOGGLE_Y_MAX = 4;
/** Room left of the bars for the axis labels, and right of them (CSS px; the buttons row matches). */
export const TOGGLE_LEFT = 22;
export const TOGGLE_RIGHT = 4;
const PLAY_MS = 500;

/**
 * What the layer passes on in training and at test time, for each kind of dropout. Inverted: kept
 * neurons are scaled by 1/(1-p) while training, nothing at test time. Classic: kept neurons pass
 * unchanged while training, every neuron is scaled by (1-p) at test time. The library's kernels
 * are inverted, so classic training is computed as (x(1-p)) * keep / (1-p).
 */
export function toggleInputs(kind: DropoutKind, p: number, h: Float32Array): { train: Float32Array; test: Float32Array } {
  if (kind === 'inverted') return { train: h, test: h };
  const down = Float32Array.from(h, (v) => v * (1 - p));
  return { train: down, test: down };
}

/** The layer's output as the next layer reads it, while training and at test time. */
interface LayerInputs {
  train: Float32Array;
  test: Float32Array;
}

/** The panel's two plots: the layer of 12 neurons, and the next layer with the output. */
interface TogglePlots {
  layer: CanvasRenderingContext2D;
  next: CanvasRenderingContext2D;
}

/** What the panel keeps between computations. */
interface ToggleState {
  /** The training step (= the mask's stream). */
  step: number;
  /** Neurons the learner flipped in the current step. */
  flips: Set<number>;
  /** The running average of the layer's training output over steps (drawn masks, no flips). */
  sum: Float64Array;
  steps: number;
  /** Which (step, p, kind) the sum last counted, so a redraw of the same step is not counted twice. */
  counted: string;
  /** The next layer plot's value range, widened to every value shown so far. */
  nextRange: [number, number];
}

/** One computation: the settings it was made for, what came out, and the running average after it. */
interface ToggleStep {
  p: number;
  kind: DropoutKind;
  stream: bigint;
  edits: ReadonlySet<number>;
  inputs: LayerInputs;
  result: Computed;
  average: Float32Array;
}

/**
 * Starts the panel on the GPU, or (ctx null: no WebGPU here) on the library's CPU reference,
 * which draws the same masks (referenceKeepMask) and computes the same layer (applyKeepMask) and
 * network (referenceMlpForward, in f64).
 */
export async function startTogglePanel(ctx: DropoutContext | null): Promise<void> {
  const where = ctx ? 'on the GPU' : 'on the CPU reference (no WebGPU here)';
  const panel = new Panel('toggle');
  const plots = toggleCanvases();
  const h = toggleNetwork().activations;
  const gpu = ctx ? gpuParts(ctx) : null;
  const state = initialState();
  const buttons = neuronButtons(state, () => void run());

  const run = latestWins(
    async () => {
      const p = readP();
      const kind = checkedKind();
      const stream = BigInt(state.step);
      const edits = new Set(state.flips);
      panel.busy(`Computing ${where}…`);
      const inputs = toggleInputs(kind, p, h);
      const result = gpu ? await gpuTurn(() => gpu.compute(p, stream, edits, inputs), panel) : cpuCompute(p, stream, edits, inputs);
      const average = countStep(state, p, kind, edits, result.layer);
      widenNextRange(state, result);
      showStep(plots, buttons, state, h, { p, kind, stream, edits, inputs, result, average });
      panel.set('ready', stepStatus(autoStepping(), state.step, p, edits, result, where));
      panel.root.dataset.backend = ctx ? 'gpu' : 'cpu';
    },
    (e) => panel.fail(e),
  );

  const nextStep = (): Promise<void> => {
    advanceStep(state);
    return run();
  };
  const readP = settingControls(() => {
    resetAverage(state);
    void run();
  });
  const autoStepping = steppingControls(panel, nextStep, run);
  panel.enable();
  for (const b of buttons) b.disabled = false;
  return run();
}

/** The layer's plot and the next layer's, each sized to its display. */
function toggleCanvases(): TogglePlots {
  return {
    layer: canvas2d('toggle-layer', (w) => (w < 420 ? 220 : 230)).g,
    next: canvas2d('toggle-next', (w) => (w < 420 ? 200 : 190)).g,
  };
}

/** The state at start: the step from the URL when it names one, no flips, no average yet. */
function initialState(): ToggleState {
  return {
    step: Math.max(0, Math.min(1e9, Math.floor(Number(urlState.get('toggle-step') ?? 0)))) || 0,
    flips: new Set<number>(),
    sum: new Float64Array(TOGGLE_NEURONS),
    steps: 0,
    counted: '',
    nextRange: [-0.5, 1.5],
  };
}

/**
 * One button per neuron, in the same columns as the bars above them (disabled until the panel
 * starts): a click flips its neuron in the current step's mask and calls `onFlip`.
 */
function neuronButtons(state: ToggleState, onFlip: () => void): HTMLButtonElement[] {
  const buttons = Array.from({ length: TOGGLE_NEURONS }, (_, i) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = String(i);
    b.dataset.neuron = String(i);
    b.disabled = true;
    b.setAttribute('aria-pressed', 'true');
    b.addEventListener('click', () => {
      if (state.flips.has(i)) state.flips.delete(i);
      else state.flips.add(i);
      onFlip();
    });
    return b;
  });
  byId('toggle-neurons').replaceChildren(...buttons);
  return buttons;
}

/** The kind of dropout whose radio is checked. */
function checkedKind(): DropoutKind {
  return (document.querySelector<HTMLInputElement>('input[name="toggle-kind"]:checked')?.value as DropoutKind | undefined) ?? 'inverted';
}

/**
 * The p slider and the kind radios (the kind from the URL when it names one), each calling
 * `onChange` when changed; returns the slider's reader.
 */
function settingControls(onChange: () => void): () => number {
  radioFromUrl('toggle-kind');
  const readP = slider('toggle-p', (v) => v.toFixed(2), onChange);
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="toggle-kind"]')) radio.addEventListener('change', onChange);
  return readP;
}

/**
 * The stepping buttons: one step, 50 steps in a row, and play / pause (a step every PLAY_MS).
 * Returns whether steps are being taken automatically (playing, or 50 steps before the last).
 */
function steppingControls(panel: Panel, nextStep: () => Promise<void>, run: () => Promise<void>): () => boolean {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let fiftyRunning = false;
  byId('toggle-step').addEventListener('click', () => void nextStep());
  const fifty = byId<HTMLButtonElement>('toggle-fifty');
  fifty.addEventListener('click', async () => {
    panel.disable(fifty);
    fiftyRunning = true;
    try {
      for (let i = 0; i < 50; i++) {
        if (i === 49) fiftyRunning = false;
        await nextStep();
      }
    } finally {
      fiftyRunning = false;
      panel.enable(fifty);
    }
  });
  const play = byId<HTMLButtonElement>('toggle-play');
  const tick = async () => {
    await nextStep();
    if (timer !== null) timer = setTimeout(() => void tick(), PLAY_MS);
  };
  play.addEventListener('click', () => {
    const playing = timer === null;
    play.setAttribute('aria-pressed', String(playing));
    play.textContent = playing ? 'Pause' : 'Play';
    if (playing) timer = setTimeout(() => void tick(), 0);
    else {
      clearTimeout(timer!);
      timer = null;
      // The step now shown gets its full status (announced once).
      void run();
    }
  });
  return () => timer !== null || fiftyRunning;
}

/** The next training step: a new stream in the URL, and none of the previous step's flips. */
function advanceStep(state: ToggleState): void {
  state.step++;
  urlState.set('toggle-step', String(state.step));
  state.flips = new Set();
}

/** Starts the running average again (p or the kind changed what the layer passes on). */
function resetAverage(state: ToggleState): void {
  state.sum = new Float64Array(TOGGLE_NEURONS);
  state.steps = 0;
  state.counted = '';
}

/**
 * The running average after this computation: it counts each step's drawn mask once (the
 * learner's flips are not draws).
 */
function countStep(state: ToggleState, p: number, kind: DropoutKind, edits: ReadonlySet<number>, layer: Float32Array): Float32Array {
  const key = `${state.step}|${p}|${kind}`;
  if (state.counted !== key && edits.size === 0) {
    state.counted = key;
    for (let i = 0; i < TOGGLE_NEURONS; i++) state.sum[i]! += layer[i]!;
    state.steps++;
  }
  return Float32Array.from(state.sum, (s) => s / Math.max(1, state.steps));
}

/** Widens the next layer plot's range to this computation's values (it never narrows). */
function widenNextRange(state: ToggleState, result: Computed): void {
  for (const v of [...result.next, ...result.test]) state.nextRange = [Math.min(state.nextRange[0], v), Math.max(state.nextRange[1], v)];
}

/** Shows a computation: both plots drawn, the buttons marked, the read-outs written and the values recorded. */
function showStep(plots: TogglePlots, buttons: HTMLButtonElement[], state: ToggleState, h: Float32Array, shown: ToggleStep): void {
  paint(plots.layer, () => drawLayer(plots.layer, state, h, shown));
  paint(plots.next, () => drawNext(plots.next, state, shown.result.next, shown.result.test));
  markNeurons(buttons, shown.result.keep, shown.edits);
  reportStep(state, h, shown);
  recordStep(plots.layer, shown);
}

/** Each neuron's button says whether it is kept, and whether the learner flipped it. */
function markNeurons(buttons: HTMLButtonElement[], keep: Uint8Array, edits: ReadonlySet<number>): void {
  buttons.forEach((b, i) => {
    const kept = keep[i] === 1;
    b.setAttribute('aria-pressed', String(kept));
    b.setAttribute('aria-label', `Neuron ${i}: ${kept ? 'kept' : 'dropped'}${edits.has(i) ? ' (by you)' : ''}`);
    b.dataset.kept = kept ? '1' : '0';
    b.dataset.flipped = edits.has(i) ? '1' : '0';
  });
}

/** The read-outs: the step, the neurons kept, the output, the average's distance from test time, and the kind's notice. */
function reportStep(state: ToggleState, h: Float32Array, { p, kind, edits, inputs, result, average }: ToggleStep): void {
  const kept = result.keep.reduce((a, b) => a + b, 0);
  showValue('toggle-stepno', `${state.step}`, state.step);
  showValue('toggle-kept', `${kept} of ${TOGGLE_NEURONS}${edits.size ? ` (${edits.size} flipped by you)` : ''}`, kept);
  const out = result.next[TOGGLE_NEXT]!;
  const outTest = result.test[TOGGLE_NEXT]!;
  showValue('toggle-output', `${fmt(out)} / ${fmt(outTest)}`, [out, outTest]);
  let err = 0;
  for (let i = 0; i < TOGGLE_NEURONS; i++) err += Math.abs(average[i]! - inputs.test[i]!);
  err /= TOGGLE_NEURONS;
  showValue('toggle-average', `mean |difference| ${fmt(err)} after ${state.steps} ${state.steps === 1 ? 'step' : 'steps'}`, [
    err,
    state.steps,
  ]);
  byId('toggle-notice').textContent = kindNotice(kind, p, h);
}

/** What the kind of dropout does while training and at test time, with this p's numbers. */
function kindNotice(kind: DropoutKind, p: number, h: Float32Array): string {
  return kind === 'inverted'
    ? `Inverted dropout: kept neurons are multiplied by 1/(1 − p) = ${fmt(1 / (1 - p), 2)} while training, so each neuron's average over many steps equals what it computed (a neuron at ${fmt(h[0]!, 2)} averages ${fmt(h[0]!, 2)}); at test time nothing is dropped and nothing scaled.`
    : `Classic dropout: kept neurons pass unchanged while training, so each neuron's average is (1 − p) times what it computed (a neuron at ${fmt(h[0]!, 2)} averages ${fmt(h[0]! * (1 - p), 2)}); at test time every neuron must be multiplied by 1 − p = ${fmt(1 - p, 2)} to match.`;
}

/** What was computed, on the layer canvas's data attributes, for tests and for checks against the CPU reference. */
function recordStep(g: CanvasRenderingContext2D, { p, kind, stream, edits, result }: ToggleStep): void {
  Object.assign(g.canvas.dataset, {
    p: String(p),
    kind,
    seed: String(SEED),
    stream: String(stream),
    drawn: result.drawn.join(''),
    keep: result.keep.join(''),
    flips: [...edits].sort((a, b) => a - b).join(','),
    values: Array.from(result.layer).join(','),
    next: Array.from(result.next).join(','),
    test: Array.from(result.test).join(','),
  });
}

/**
 * The live status. While playing (or running 50 steps) it keeps one text, so a screen reader is
 * not told every step; the read-outs still follow each step.
 */
function stepStatus(stepping: boolean, step: number, p: number, edits: ReadonlySet<number>, result: Computed, where: string): string {
  if (stepping) return `Stepping: a new mask every step, computed ${where}. Press Pause to stop and read the step.`;
  const kept = result.keep.reduce((a, b) => a + b, 0);
  const out = result.next[TOGGLE_NEXT]!;
  const outTest = result.test[TOGGLE_NEXT]!;
  return `Step ${step}, p = ${p.toFixed(2)}: ${kept} of ${TOGGLE_NEURONS} neurons kept${edits.size ? `, ${edits.size} flipped by you` : ''}; output ${fmt(out)} (without dropout ${fmt(outTest)}). Computed ${where}.`;
}

/** The 12 neurons: what each computed (grey) and what it passes on (blue), on the fixed axis. */
function drawLayer(
  g: CanvasRenderingContext2D,
  state: ToggleState,
  h: Float32Array,
  { p, kind: k, inputs, result, average }: ToggleStep,
): void {
  const { layer, keep } = result;
  clear(g);
  const { width: W, height: H } = size(g);
  const top = 34;
  const base = H - 22;
  const unit = (base - top) / TOGGLE_Y_MAX;
  const colW = (W - TOGGLE_LEFT - TOGGLE_RIGHT) / TOGGLE_NEURONS;
  const barW = Math.max(4, 0.34 * colW);
  drawValueAxis(g, W, base, unit);
  g.textAlign = 'left';
  g.textBaseline = 'top';
  g.fillStyle = colors.ink;
  g.font = '600 13px system-ui, sans-serif';
  const scale = k === 'inverted' ? `kept × ${fmt(1 / (1 - p), 2)}` : 'kept × 1 (classic)';
  g.fillText(`Step ${state.step}, p = ${p.toFixed(2)}: ${scale}`, TOGGLE_LEFT, 6);
  const bars: { input: [number, number]; output: [number, number] }[] = [];
  for (let i = 0; i < TOGGLE_NEURONS; i++) {
    const x0 = TOGGLE_LEFT + i * colW;
    const xIn = x0 + colW / 2 - barW - 1;
    const xOut = x0 + colW / 2 + 1;
    const hIn = Math.min(TOGGLE_Y_MAX, h[i]!) * unit;
    g.fillStyle = colors.input;
    g.fillRect(xIn, base - hIn, barW, hIn);
    const v = layer[i]!;
    if (keep[i]) {
      const hOut = Math.min(TOGGLE_Y_MAX, v) * unit;
      g.fillStyle = colors.kept;
      g.fillRect(xOut, base - hOut, barW, hOut);
      if (v > TOGGLE_Y_MAX) {
        // Off the fixed scale: an arrowhead says so and the value is written.
        g.fillStyle = colors.ink;
        g.beginPath();
        g.moveTo(xOut, top + 6);
        g.lineTo(xOut + barW / 2, top - 2);
        g.lineTo(xOut + barW, top + 6);
        g.fill();
      }
      bars.push({ input: [xIn + barW / 2, hIn], output: [xOut + barW / 2, hOut] });
    } else {
      g.strokeStyle = colors.ink;
      g.lineWidth = 1.5;
      g.beginPath();
      g.moveTo(xOut, base - 2 - barW);
      g.lineTo(xOut + barW, base - 2);
      g.moveTo(xOut + barW, base - 2 - barW);
      g.lineTo(xOut, base - 2);
      g.stroke();
      bars.push({ input: [xIn + barW / 2, hIn], output: [xOut + barW / 2, 0] });
    }
    // The running average and, in classic mode, the test-time value (x(1-p)) it should reach.
    if (state.steps > 0) drawLevel(g, base - Math.min(TOGGLE_Y_MAX, average[i]!) * unit, xIn - 2, xOut + barW + 2, colors.ink, 2.5);
    if (k === 'classic') drawLevel(g, base - inputs.test[i]! * unit, xIn - 2, xOut + barW + 2, colors.plain, 1.5, [3, 2]);
  }
  g.canvas.dataset.bars = JSON.stringify({ base, unit, bars });
}

/** The layer plot's value axis: a grid line and a label at each whole value from 0 to TOGGLE_Y_MAX. */
function drawValueAxis(g: CanvasRenderingContext2D, W: number, base: number, unit: number): void {
  g.font = '12px system-ui, sans-serif';
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  g.lineWidth = 1;
  for (let v = 0; v <= TOGGLE_Y_MAX; v++) {
    const y = base - v * unit;
    g.strokeStyle = v === 0 ? colors.ink : colors.grid;
    g.beginPath();
    g.moveTo(TOGGLE_LEFT, y);
    g.lineTo(W - TOGGLE_RIGHT, y);
    g.stroke();
    g.fillStyle = colors.muted;
    g.fillText(String(v), TOGGLE_LEFT - 5, y);
  }
}

/** A level mark across a neuron's two bars, at height y (dashed when `dash` is given). */
function drawLevel(g: CanvasRenderingContext2D, y: number, x0: number, x1: number, color: string, width: number, dash?: number[]): void {
  g.strokeStyle = color;
  if (dash) g.setLineDash(dash);
  g.lineWidth = width;
  g.beginPath();
  g.moveTo(x0, y);
  g.lineTo(x1, y);
  g.stroke();
  if (dash) g.setLineDash([]);
}

/** The next layer's 6 units and the output: with this step's mask (blue) and without dropout (outline). */
function drawNext(g: CanvasRenderingContext2D, state: ToggleState, next: Float32Array, test: Float32Array): void {
  clear(g);
  const { width: W, height: H } = size(g);
  const top = 30;
  const bottom = H - 24;
  const [lo, hi] = [Math.min(0, state.nextRange[0]), Math.max(state.nextRange[1], 0.5)];
  const y = (v: number) => top + ((hi - v) / (hi - lo)) * (bottom - top);
  const n = TOGGLE_NEXT + 1;
  const gap = 18;
  const colW = (W - TOGGLE_LEFT - TOGGLE_RIGHT - gap) / n;
  const barW = Math.max(5, 0.3 * colW);
  g.font = '600 13px system-ui, sans-serif';
  g.fillStyle = colors.ink;
  g.textAlign = 'left';
  g.textBaseline = 'top';
  g.fillText('Next layer (ReLU) and output', TOGGLE_LEFT, 6);
  g.strokeStyle = colors.ink;
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(TOGGLE_LEFT, y(0));
  g.lineTo(W - TOGGLE_RIGHT, y(0));
  g.stroke();
  g.font = '12px system-ui, sans-serif';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  g.fillStyle = colors.muted;
  g.fillText('0', TOGGLE_LEFT - 5, y(0));
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (let j = 0; j < n; j++) {
    const cx = TOGGLE_LEFT + j * colW + colW / 2 + (j === TOGGLE_NEXT ? gap : 0);
    const a = next[j]!;
    const b = test[j]!;
    g.fillStyle = j === TOGGLE_NEXT ? colors.dropout : colors.kept;
    g.fillRect(cx - barW - 1, Math.min(y(a), y(0)), barW, Math.abs(y(a) - y(0)));
    g.strokeStyle = colors.ink;
    g.lineWidth = 1.5;
    g.strokeRect(cx + 1, Math.min(y(b), y(0)), barW, Math.max(1, Math.abs(y(b) - y(0))));
    g.fillStyle = colors.ink;
    g.fillText(j === TOGGLE_NEXT ? 'output' : `u${j}`, cx, bottom + 6);
  }
  drawNextKey(g, W);
}

/** A key, when there is room: filled = this step, outline = without dropout. */
function drawNextKey(g: CanvasRenderingContext2D, W: number): void {
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  g.font = '12px system-ui, sans-serif';
  const keyX = Math.max(TOGGLE_LEFT + 190, W - TOGGLE_RIGHT - 190);
  if (W >= 480) {
    g.fillStyle = colors.kept;
    g.fillRect(keyX, 9, 12, 10);
    g.fillStyle = colors.ink;
    g.fillText('this step', keyX + 16, 14);
    g.strokeRect(keyX + 80, 9, 12, 10);
    g.fillText('no dropout', keyX + 96, 14);
  }
}

interface Computed {
  drawn: Uint8Array;
  keep: Uint8Array;
  layer: Float32Array;
  next: Float32Array;
  test: Float32Array;
}

const NETWORK = toggleNetwork();

function withFlips(drawn: Uint8Array, edits: ReadonlySet<number>): Uint8Array {
  return Uint8Array.from(drawn, (v, i) => (edits.has(i) ? 1 - v : v));
}

/**
 * The GPU path: bernoulliMask draws the step's packed mask; the learner's flips are applied to it
 * and the edited packed mask uploaded; the dropout kernel applies it (dropoutBackward's mask path:
 * out = x * keep / (1 - p)) and the MLP runs on the result and on the test-time input.
 */
function gpuParts(ctx: DropoutContext): {
  compute: (p: number, stream: bigint, edits: ReadonlySet<number>, inputs: LayerInputs) => Promise<Computed>;
} {
  const mlp = new MLP(ctx, { sizes: NETWORK.sizes, dropout: 0, seed: 1 });
  mlp.setParameters(NETWORK.parameters);
  const drawnMask = ctx.acquire(4, 'toggle drawn mask');
  const userMask = ctx.acquire(4, 'toggle edited mask');
  const trainIn = ctx.acquire(TOGGLE_NEURONS * 4, 'toggle layer input');
  const masked = ctx.acquire(TOGGLE_NEURONS * 4, 'toggle masked layer');
  return {
    async compute(p, stream, edits, inputs) {
      await bernoulliMask(ctx, { count: TOGGLE_NEURONS, p, seed: SEED, stream, packed: true, out: drawnMask });
      const [bits] = await readArray(ctx, drawnMask, 'u32', 1);
      const drawn = Uint8Array.from({ length: TOGGLE_NEURONS }, (_, i) => (bits! >>> i) & 1);
      const keep = withFlips(drawn, edits);
      ctx.device.queue.writeBuffer(userMask, 0, Uint32Array.from(packMask(keep)));
      ctx.device.queue.writeBuffer(trainIn, 0, Float32Array.from(inputs.train));
      const state: DropoutState = { p, seed: SEED, stream, offset: 0n, count: TOGGLE_NEURONS, dtype: 'f32', training: true };
      await dropoutBackward(ctx, trainIn, state, { mask: userMask, out: masked });
      const testMatrix = uploadMatrix(ctx, inputs.test, 1, TOGGLE_NEURONS);
      const [trainOut, testOut] = await Promise.all([
        mlp.predict({ buffer: masked, rows: 1, cols: TOGGLE_NEURONS }),
        mlp.predict(testMatrix),
      ]);
      const [layer, next, test] = await Promise.all([
        readArray(ctx, masked, 'f32', TOGGLE_NEURONS),
        readMatrix(ctx, trainOut),
        readMatrix(ctx, testOut),
      ]);
      for (const b of [testMatrix.buffer, trainOut.buffer, testOut.buffer]) ctx.release(b);
      return { drawn, keep, layer, next, test };
    },
  };
}

/** The CPU path: the library's reference functions, the same masks and arithmetic as the GPU's. */
function cpuCompute(p: number, stream: bigint, edits: ReadonlySet<number>, inputs: LayerInputs): Computed {
  const drawn = referenceKeepMask(TOGGLE_NEURONS, p, { seed: SEED, stream });
  const keep = withFlips(drawn, edits);
  const layer = applyKeepMask(inputs.train, keep, p, 'f32') as Float32Array;
  const model = { sizes: NETWORK.sizes, parameters: NETWORK.parameters };
  return {
    drawn,
    keep,
    layer,
    next: Float32Array.from(referenceMlpForward(model, layer, 1)),
    test: Float32Array.from(referenceMlpForward(model, inputs.test, 1)),
  };
}
