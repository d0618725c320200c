// Device acquisition behind one seam: the browser's navigator.gpu, or any GPU object passed in
// (Node gets one from 'webgpu-dropout/node').
import { InvalidArgumentError, UnsupportedError } from './errors.js';
import { checkOptionNames, optionNames } from './options.js';
import { trackObjects } from './runtime/tracking.js';

/** The options of {@link requestDropoutDevice}. */
export interface DeviceRequest {
  /** The GPU entry point (default: navigator.gpu). */
  gpu?: GPU;
  /** Passed to `requestAdapter`: 'low-power' or 'high-performance' (default: the browser's choice).
   * Any other value is an InvalidArgumentError before an adapter is requested. */
  powerPreference?: GPUPowerPreference;
  /** 'prefer' (default): request shader-f16 when the adapter has it (f16 then takes the native path, else the packed one); 'require': fail without it; 'off': never request it (f16 takes the packed path). */
  f16?: 'prefer' | 'require' | 'off';
}

/** What {@link requestDropoutDevice} returns. */
export interface AcquiredDevice {
  /** The adapter the device was requested from. */
  adapter: GPUAdapter;
  /** The device: give it to `DropoutContext.create`. It is the caller's to destroy. */
  device: GPUDevice;
  /** Vendor / architecture / description as the adapter reports them. */
  adapterName: string;
}

export const NO_WEBGPU_MESSAGE =
  'WebGPU is not available here (navigator.gpu is undefined). Use a browser with WebGPU enabled ' +
  '(Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows; elsewhere enable it in the browser flags, ' +
  'e.g. chrome://flags/#enable-unsafe-webgpu), served over https or localhost. ' +
  "In Node, get a GPU from 'webgpu-dropout/node'.";

const REQUEST_OPTIONS = optionNames<DeviceRequest>({ gpu: true, powerPreference: true, f16: true });

/**
 * Requests an adapter and a device from `request.gpu` (default `navigator.gpu`), asking for the
 * adapter's largest `maxStorageBufferBindingSize` and `maxBufferSize` (so fewer tensors need
 * chunking), `shader-f16` as `request.f16` says, and `timestamp-query` where the adapter has it.
 * Every option is checked before anything is requested.
 * @throws {@link InvalidArgumentError} (rejects) for an unknown option or a bad `f16` or `powerPreference`;
 *   {@link UnsupportedError} when there is no WebGPU (the message says what to enable), no adapter,
 *   or `f16: 'require'` and the adapter lacks `shader-f16`.
 */
export async function requestDropoutDevice(request: DeviceRequest = {}): Promise<AcquiredDevice> {
  // Checked before anything is requested, so a typo costs no adapter.
  if (typeof request !== 'object' || request === null)
    throw new InvalidArgumentError('options', 'an object ({ gpu?, powerPreference?, f16? })', request);
  checkOptionNames(request, REQUEST_OPTIONS);
  const f16 = request.f16 ?? 'prefer';
  if (f16 !== 'prefer' && f16 !== 'require' && f16 !== 'off') throw new InvalidArgumentError('f16', "'prefer', 'require' or 'off'", f16);
  // requestAdapter would refuse a bad value with WebIDL's TypeError, which names nothing.
  const { powerPreference } = request;
  if (powerPreference !== undefined && powerPreference !== 'low-power' && powerPreference !== 'high-performance') {
    throw new InvalidArgumentError('powerPreference', "undefined, 'low-power' or 'high-performance'", powerPreference);
  }
  const gpu = request.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new UnsupportedError(NO_WEBGPU_MESSAGE);
  const adapter = await gpu.requestAdapter(powerPreference ? { powerPreference } : undefined);
  if (!adapter) throw new UnsupportedError('WebGPU is present but no adapter was found (requestAdapter returned null)');
  const hasF16 = adapter.features.has('shader-f16');
  if (f16 === 'require' && !hasF16)
    throw new UnsupportedError(
      "the adapter lacks 'shader-f16', which the native f16 path needs (without it f16 takes the packed path: request with f16: 'prefer' or 'off')",
    );
  // Ask for the adapter's largest binding and buffer sizes so fewer tensors need chunking.
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  };
  const requiredFeatures: GPUFeatureName[] = hasF16 && f16 !== 'off' ? ['shader-f16'] : [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  // From here on, encoders made on this device are known to be its own (see runtime/tracking.ts).
  trackObjects(device);
  return { adapter, device, adapterName: describeAdapter(adapter) };
}

/** The adapter's vendor, architecture, device and description (as `adapter.info` reports them,
 * empty and repeated parts left out) joined by ' / ', or 'unknown adapter'. */
export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info;
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s?.length);
  return parts.length ? [...new Set(parts)].join(' / ') : 'unknown adapter';
}
