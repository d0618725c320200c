// The demo page's entry point: acquire a WebGPU device (or explain what is missing), then start
// the panels one after another so the first results appear quickly.
import { DropoutContext, NO_WEBGPU_MESSAGE, UnsupportedError, requestDropoutDevice } from '../src/index.js';
import { startEnsemblePanel } from './panels/ensemble.js';
import { startMaskPanel } from './panels/mask.js';
import { startMcPanel } from './panels/mc.js';
import { startOverfitPanel } from './panels/overfit.js';
import { startSpeedPanel } from './panels/speed.js';
import { message } from './plot.js';
import { Panel, byId } from './ui.js';

const PANELS = ['mask', 'ensemble', 'overfit', 'mc', 'speed'] as const;

function showBlocker(title: string, text: string): void {
  const box = byId('no-webgpu');
  box.querySelector('h2')!.textContent = title;
  byId('no-webgpu-message').textContent = text;
  box.hidden = false;
}

/** Every panel says it cannot run, and its controls are disabled. */
function markUnavailable(reason: string): void {
  for (const name of PANELS) {
    const panel = new Panel(name);
    panel.set('unavailable', reason);
    panel.disable();
    for (const canvas of panel.root.querySelectorAll('canvas')) {
      const g = canvas.getContext('2d');
      if (g) message(g, 'Needs WebGPU');
    }
  }
}

async function main(): Promise<void> {
  let ctx: DropoutContext;
  try {
    const { device, adapterName } = await requestDropoutDevice();
    ctx = await DropoutContext.create(device);
    const f16 = ctx.supportsF16 ? 'f16 supported' : 'no f16';
    byId('adapter').textContent = `Computing on: ${adapterName} (${f16}).`;
    void device.lost.then((info) => {
      if (info.reason === 'destroyed') return;
      document.body.dataset.webgpu = 'lost';
      showBlocker('The GPU device was lost', `${info.message || info.reason}. Reload the page to start again.`);
    });
  } catch (e) {
    const missing = e instanceof UnsupportedError;
    document.body.dataset.webgpu = missing ? 'missing' : 'failed';
    const text = e instanceof Error ? e.message : String(e);
    byId('adapter').textContent = missing ? 'No WebGPU adapter.' : 'WebGPU failed to start.';
    showBlocker(missing ? 'WebGPU is needed for this page' : 'WebGPU could not start', missing && text === NO_WEBGPU_MESSAGE ? NO_WEBGPU_MESSAGE : text);
    markUnavailable(missing ? 'Needs WebGPU (see the message at the top).' : `WebGPU failed: ${text}`);
    return;
  }
  document.body.dataset.webgpu = 'ready';
  startSpeedPanel(ctx);
  // In order, so the light panels are on screen before training takes the GPU.
  await startMaskPanel(ctx);
  await startEnsemblePanel(ctx);
  await startMcPanel(ctx);
  await startOverfitPanel(ctx);
}

void main().catch((e) => console.error('demo failed to start', e));
