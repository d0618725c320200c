// Node entry: a WebGPU adapter from Dawn's Node bindings (the 'webgpu' package), with the Vulkan
// driver chosen by one environment variable, WEBGPU_DROPOUT_ADAPTER:
//   lavapipe     Mesa's CPU Vulkan driver (the default when its ICD file is installed)
//   swiftshader  the SwiftShader Vulkan ICD shipped with Debian's chromium
//   system       leave the Vulkan loader alone (real GPUs)
//   <path>       an ICD json file

/**
 * WebGPU in Node through Dawn (the `webgpu` package): {@link requestNodeDevice} returns a device on
 * the Vulkan driver that `WEBGPU_DROPOUT_ADAPTER` ({@link ADAPTER_ENV}) or the `adapter` option picks:
 * Mesa's lavapipe (a CPU driver, the default where installed), SwiftShader, the system's driver, or
 * an ICD json file.
 * @module webgpu-dropout/node
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AcquiredDevice, type DeviceRequest, describeAdapter, requestDropoutDevice } from './device.js';
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import { checkOptionNames, optionNames } from './options.js';

/**
 * The environment variable that picks the Vulkan driver in Node: 'lavapipe' (Mesa's CPU driver),
 * 'swiftshader', 'system' (the Vulkan loader's own choice, e.g. a real GPU) or the path of an ICD
 * json file. Unset: lavapipe where it is installed, else the system loader.
 */
export const ADAPTER_ENV = 'WEBGPU_DROPOUT_ADAPTER';

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

function findIcd(pattern: RegExp, extraDirs: string[] = []): string | undefined {
  for (const dir of [...ICD_DIRS, ...extraDirs]) {
    if (!existsSync(dir)) continue;
    const hit = readdirSync(dir).find((f) => pattern.test(f));
    if (hit) return `${dir}/${hit}`;
  }
  return undefined;
}

/**
 * The ICD file the adapter choice resolves to (undefined: leave the loader's own choice).
 * @param choice - An {@link ADAPTER_ENV} value (default: the variable's current value).
 * @param source - What errors call the choice (default the variable's name).
 * @throws {@link "webgpu-dropout".UnsupportedError | UnsupportedError} for 'lavapipe' or 'swiftshader' when that driver is not
 *   installed, a path that names no file, or any other value.
 */
export function resolveIcd(choice = process.env[ADAPTER_ENV], source: string = ADAPTER_ENV): string | undefined {
  const wanted = choice?.trim() || 'default';
  if (wanted === 'system') return undefined;
  if (wanted === 'lavapipe' || wanted === 'default') {
    const icd = findIcd(/^lvp_icd.*\.json$/);
    if (!icd && wanted === 'lavapipe') throw new UnsupportedError(`${source}=lavapipe but no lvp_icd*.json was found; run 'npm run setup'`);
    return icd;
  }
  if (wanted === 'swiftshader') {
    const icd = findIcd(/^vk_swiftshader_icd\.json$/, ['/usr/lib/chromium', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu']);
    if (!icd) throw new UnsupportedError(`${source}=swiftshader but vk_swiftshader_icd.json was not found (install Debian's chromium)`);
    return icd;
  }
  if (existsSync(wanted) && statSync(wanted).isFile()) return wanted;
  if (/[\\/]/.test(wanted) || wanted.endsWith('.json')) {
    throw new UnsupportedError(
      `${source}=${wanted}: ${existsSync(wanted) ? 'not a file' : 'no such file'} (a path must name an ICD json file)`,
    );
  }
  throw new UnsupportedError(`${source}: expected lavapipe, swiftshader, system or an ICD json path, got ${JSON.stringify(wanted)}`);
}

/** What {@link requestNodeDevice} returns: the device, its adapter, and how to release it. */
export interface NodeDevice extends AcquiredDevice {
  /** The Vulkan ICD used ('system' when the loader chose). */
  icd: string;
  /** Destroys the device (idempotent): work still pending on it rejects with DeviceLostError. */
  release(): void;
}

/** requestNodeDevice's options: requestDropoutDevice's, with the adapter instead of a GPU object. */
export type NodeDeviceRequest = Omit<DeviceRequest, 'gpu'> & {
  /** An {@link ADAPTER_ENV} value ('lavapipe', 'swiftshader', 'system' or an ICD json path); overrides the variable. */
  adapter?: string;
};
const NODE_REQUEST_OPTIONS = optionNames<NodeDeviceRequest>({ adapter: true, powerPreference: true, f16: true });

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

/**
 * Dawn's GPU objects, one per ICD and flag set, kept for the life of the process. A Dawn instance
 * must outlive every device made from it, yet nothing in WebGPU's API keeps it alive: a device
 * whose GPU object was collected crashes the process at its next use (or deadlocks on the freed
 * instance's event lock). Holding them here costs one instance per driver choice, and does not
 * keep Node from exiting.
 */
const dawnInstances = new Map<string, GPU>();

/**
 * The process's Dawn GPU object for `icd` (undefined: the Vulkan loader's own choice) and the Dawn
 * `flags` (e.g. 'disable-dawn-features=timestamp_quantization'): created on first use, then the
 * same object for every caller, never released.
 * @throws {@link "webgpu-dropout".UnsupportedError | UnsupportedError} when the `webgpu` package cannot be loaded.
 */
export function dawnGpu(icd: string | undefined, flags: readonly string[] = []): GPU {
  const key = `${icd ?? 'system'}\n${flags.join('\n')}`;
  const known = dawnInstances.get(key);
  if (known) return known;
  let webgpu: DawnModule;
  try {
    webgpu = createRequire(import.meta.url)('webgpu') as DawnModule;
  } catch (e) {
    throw new UnsupportedError(
      `the 'webgpu' package (Dawn for Node) is needed in Node: npm install webgpu (${(e as Error).message.split('\n')[0]})`,
    );
  }
  if (icd) {
    // The Vulkan loader reads these when Dawn creates its instance, i.e. in create() below.
    process.env.VK_ICD_FILENAMES = icd;
    process.env.VK_DRIVER_FILES = icd;
  }
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  for (const [k, v] of Object.entries(webgpu.globals)) (globalThis as Record<string, unknown>)[k] ??= v;
  const gpu = webgpu.create([...flags]);
  dawnInstances.set(key, gpu);
  return gpu;
}

/**
 * A GPUDevice in Node through Dawn (the `webgpu` package), on the adapter `request.adapter` or else
 * WEBGPU_DROPOUT_ADAPTER selects, requested as {@link requestDropoutDevice} does. Keeping only the
 * device is safe: the Dawn instance behind it lives as long as the process.
 * @throws {@link "webgpu-dropout".InvalidArgumentError | InvalidArgumentError} (rejects) for an unknown option or a bad value;
 *   {@link "webgpu-dropout".UnsupportedError | UnsupportedError} for an adapter choice that is not a
 *   known value or names a driver or file that is not installed, when the `webgpu` package is
 *   missing, or when there is no adapter.
 */
export async function requestNodeDevice(request: NodeDeviceRequest = {}): Promise<NodeDevice> {
  if (typeof request !== 'object' || request === null)
    throw new InvalidArgumentError('options', 'an object ({ adapter?, powerPreference?, f16? })', request);
  checkOptionNames(request, NODE_REQUEST_OPTIONS);
  if (request.adapter !== undefined && typeof request.adapter !== 'string') {
    throw new InvalidArgumentError('adapter', 'lavapipe, swiftshader, system or an ICD json path', request.adapter);
  }
  const icd = request.adapter === undefined ? resolveIcd() : resolveIcd(request.adapter, 'adapter');
  const acquired = await requestDropoutDevice({ powerPreference: request.powerPreference, f16: request.f16, gpu: dawnGpu(icd) });
  return {
    ...acquired,
    adapterName: describeAdapter(acquired.adapter),
    icd: icd ?? 'system',
    release() {
      acquired.device.destroy();
    },
  };
}
