// The benchmark's device: the process's Dawn GPU object (src/node.ts) on the adapter
// WEBGPU_DROPOUT_ADAPTER selects, kept so TensorFlow.js can be pointed at the very same GPUDevice.
import { DropoutContext, describeAdapter, type LaunchTuning, requestDropoutDevice } from '../src/index.js';
import { dawnGpu, resolveIcd } from '../src/node.js';
import { UsageError } from './options.js';

export interface BenchEnv {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  ctx: DropoutContext;
  adapterName: string;
  icd: string;
  timestamps: boolean;
  close(): void;
}

export async function openBenchEnv(): Promise<BenchEnv> {
  const icd = resolveIcd();
  // Dawn rounds timestamps to 65.536 us by default (a browser's timing-attack guard); the
  // benchmark wants them exact.
  const gpu = dawnGpu(icd, ['disable-dawn-features=timestamp_quantization']);
  const { adapter, device } = await requestDropoutDevice({ gpu });
  // validate: false keeps error-scope round trips out of the timed submissions. The launch tuning is
  // the adapter's default unless WEBGPU_DROPOUT_TUNING gives one (JSON, e.g. '{"groupsPerInvocation":4}'),
  // for timing the choices against each other; the report records the tuning used.
  const ctx = await DropoutContext.create(device, { validate: false, seed: 0x5eedn, ...tuningFromEnv() });
  return {
    gpu,
    adapter,
    device,
    ctx,
    adapterName: describeAdapter(adapter),
    icd: icd ?? 'system',
    timestamps: device.features.has('timestamp-query'),
    close() {
      ctx.destroy();
      device.destroy();
    },
  };
}

/** Context options from WEBGPU_DROPOUT_TUNING, if set: JSON with the ContextOptions.tuning fields
 * and optionally workgroupSize; a value that is not JSON is a usage error. */
export function tuningFromEnv(value = process.env.WEBGPU_DROPOUT_TUNING): { tuning?: LaunchTuning; workgroupSize?: number } {
  if (!value) return {};
  let parsed: LaunchTuning & { workgroupSize?: number };
  try {
    parsed = JSON.parse(value) as LaunchTuning & { workgroupSize?: number };
  } catch {
    throw new UsageError(
      `WEBGPU_DROPOUT_TUNING: expected JSON such as '{"groupsPerInvocation":1,"maskWords":"workgroup","workgroupSize":128}', got ${value}`,
    );
  }
  const { workgroupSize, ...tuning } = parsed;
  return { tuning, ...(workgroupSize !== undefined ? { workgroupSize } : {}) };
}

/** A short file-name-safe name for the adapter: 'lavapipe', 'swiftshader', or the device name. */
export function adapterSlug(adapter: GPUAdapter): string {
  const name = describeAdapter(adapter).toLowerCase();
  if (name.includes('llvmpipe') || name.includes('lavapipe')) return 'lavapipe';
  if (name.includes('swiftshader')) return 'swiftshader';
  const info = adapter.info;
  const base = (info?.description || info?.device || info?.vendor || 'gpu').toLowerCase();
  return (
    base
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'gpu'
  );
}
