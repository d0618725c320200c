// The demo page's entry point: acquire a WebGPU device (or explain what is missing and how to
// enable it), then start the panels one after another so the first results appear quickly.
import { NO_WEBGPU_MESSAGE } from '../src/device.js';
import { DropoutContext, requestDropoutDevice, UnsupportedError } from '../src/index.js';
import { startEnsemblePanel } from './panels/ensemble.js';
import { startMaskPanel } from './panels/mask.js';
import { startMcPanel } from './panels/mc.js';
import { startOverfitPanel } from './panels/overfit.js';
import { startSpeedPanel } from './panels/speed.js';
import { startTogglePanel } from './panels/toggle.js';
import { message } from './plot.js';
import { byId, canvas2d, haltPanels, Panel } from './ui.js';

/** The panels that can run on the CPU reference when there is no WebGPU. */
const CPU_PANELS = ['toggle', 'mask'] as const;
const PANELS = ['toggle', 'mask', 'ensemble', 'overfit', 'mc', 'speed'] as const;

/**
 * What a visitor can do when the browser has WebGPU but gives the page no adapter or device: the
 * usual causes are hardware acceleration turned off, a blocklisted GPU, and Linux, where Chrome
 * still keeps WebGPU behind a flag.
 */
const ENABLE_STEPS = [
  'Chrome or Edge: turn on "Use graphics acceleration when available" (Settings → System) and restart the browser; chrome://gpu shows whether WebGPU is hardware accelerated or blocked.',
  'Chrome on Linux: WebGPU also needs chrome://flags/#enable-unsafe-webgpu set to Enabled (or start Chrome with --enable-unsafe-webgpu).',
  "Firefox or Safari: use a recent version with WebGPU turned on (Firefox 141+ on Windows, Safari 26+; elsewhere dom.webgpu.enabled in about:config, or Safari's Feature Flags).",
  'Then reload this page.',
];

interface Blocker {
  title: string;
  text: string;
  steps?: readonly string[];
  /** The technical reason, shown as a secondary line. */
  detail?: string;
}

function showBlocker({ title, text, steps = [], detail }: Blocker): void {
  const box = byId('no-webgpu');
  box.querySelector('h2')!.textContent = title;
  byId('no-webgpu-message').textContent = text;
  const list = byId('no-webgpu-steps');
  list.replaceChildren(
    ...steps.map((step) => {
      const item = document.createElement('li');
      item.textContent = step;
      return item;
    }),
  );
  list.hidden = steps.length === 0;
  const secondary = byId('no-webgpu-detail');
  secondary.textContent = detail ? `Technical detail: ${detail}` : '';
  secondary.hidden = !detail;
  box.hidden = false;
}

/**
 * Every panel says it cannot run, for good, and its controls are disabled. `canvasText` replaces
 * the drawings; without it they stay (dimmed by the stylesheet), since they were computed.
 */
function markUnavailable(reason: string, canvasText?: string): void {
  haltPanels();
  for (const name of PANELS) {
    const panel = new Panel(name);
    panel.set('unavailable', reason);
    panel.progress('');
    panel.disable();
    if (!canvasText) continue;
    for (const canvas of panel.root.querySelectorAll('canvas')) message(canvas2d(canvas.id).g, canvasText);
  }
}

async function main(): Promise<void> {
  let ctx: DropoutContext;
  try {
    const { device, adapterName } = await requestDropoutDevice();
    ctx = await DropoutContext.create(device);
    const f16 = ctx.f16Path === 'native' ? 'f16: native, shader-f16' : 'f16: packed path, no shader-f16';
    byId('adapter').textContent = `Computing on: ${adapterName} (${f16}).`;
    void device.lost.then((info) => {
      if (info.reason === 'destroyed') return;
      document.body.dataset.webgpu = 'lost';
      byId('adapter').textContent = `Was computing on: ${adapterName} (the device was lost).`;
      showBlocker({
        title: 'The GPU device was lost',
        text: 'The GPU stopped working for this page (for example after a driver reset or update). Reload the page to start again.',
        detail: info.message ? `${info.reason}: ${info.message}` : info.reason,
      });
      markUnavailable('The GPU device was lost: reload the page to compute again.');
    });
  } catch (e) {
    const missing = e instanceof UnsupportedError;
    document.body.dataset.webgpu = missing ? 'missing' : 'failed';
    const text = e instanceof Error ? e.message : String(e);
    byId('adapter').textContent = missing ? 'No WebGPU adapter.' : 'WebGPU failed to start.';
    if (missing && text === NO_WEBGPU_MESSAGE) {
      // No navigator.gpu at all: the library's message says which browsers have it and how.
      showBlocker({ title: 'WebGPU is needed for this page', text: NO_WEBGPU_MESSAGE });
    } else if (missing) {
      showBlocker({
        title: 'WebGPU is needed for this page',
        text: 'This browser knows WebGPU, but it gave the page no GPU adapter: WebGPU is turned off here, or the GPU is blocked. To enable it:',
        steps: ENABLE_STEPS,
        detail: text,
      });
    } else {
      showBlocker({
        title: 'WebGPU could not start',
        text: 'This browser found a GPU adapter but could not open a device on it. Reloading may help; otherwise check its GPU settings:',
        steps: ENABLE_STEPS,
        detail: e instanceof Error ? `${e.name}: ${e.message}` : text,
      });
    }
    // Panels 1 and 2 run on the library's CPU reference instead (the same masks); the rest need a GPU.
    const reason = missing ? 'Needs WebGPU (see the message at the top).' : 'WebGPU failed to start (see the message at the top).';
    for (const name of PANELS) {
      if ((CPU_PANELS as readonly string[]).includes(name)) continue;
      const panel = new Panel(name);
      panel.set('unavailable', reason);
      panel.disable();
      for (const canvas of panel.root.querySelectorAll('canvas')) message(canvas2d(canvas.id).g, 'Needs WebGPU');
    }
    byId('adapter').textContent += ' Panels 1 and 2 run on the CPU reference instead (the same masks as on a GPU); the others need WebGPU.';
    await startTogglePanel(null);
    await startMaskPanel(null);
    return;
  }
  document.body.dataset.webgpu = 'ready';
  // The panels that train wait for the light ones: say so on their canvases until they start.
  for (const [name, ids] of [
    ['ensemble', ['ensemble-nets', 'ensemble-output']],
    ['overfit', ['overfit-loss', 'overfit-boundary-plain', 'overfit-boundary-dropout']],
    ['mc', ['mc-canvas']],
  ] as const) {
    new Panel(name).set('waiting', 'Queued: starts on the GPU once the panels above are drawn…');
    // Not canvas2d: the panel fits its canvases itself (with its own heights); the message is replayed then.
    for (const id of ids) message(byId<HTMLCanvasElement>(id).getContext('2d')!, 'Queued: computed on the GPU after the panels above…');
  }
  startSpeedPanel(ctx);
  // In order, so the light panels are on screen before training takes the GPU.
  await startTogglePanel(ctx);
  await startMaskPanel(ctx);
  await startEnsemblePanel(ctx);
  await startMcPanel(ctx);
  await startOverfitPanel(ctx);
}

void main().catch((e) => {
  // After a lost device the failures that follow are expected; the banner has said why.
  if (document.body.dataset.webgpu !== 'lost') console.error('demo failed to start', e);
});
