// What WebGPU does not let a library ask of the objects it is given: which device a command
// encoder records for, whether it was finished, and whether a buffer was destroyed. Passing an
// encoder of another device, a finished encoder or a destroyed buffer otherwise fails late (at the
// caller's submit, as uncaptured errors, or in a later call whose pooled buffer was destroyed).
//
// These are observed where they happen: three methods of the WebGPU classes are wrapped, once per
// class, when the first context (or the Node entry's GPU object) is made for it. A wrapper calls
// the original with the same arguments and returns its result; it only notes the object in a
// WeakMap or WeakSet. Method calls made after that are seen for every object, old or new; an
// encoder created before that has no known device, and is then taken on trust.

const encoderDevices = new WeakMap<object, GPUDevice>();
const finishedEncoders = new WeakSet<object>();
const destroyedBuffers = new WeakSet<object>();

const WRAPPED = Symbol.for('webgpu-dropout.tracked');

type Method = ((...args: unknown[]) => unknown) & { [WRAPPED]?: true };

/** Replaces `proto[name]` with a wrapper that calls it and then `note(this, result)`; once only. */
function wrap(proto: object | null, name: string, note: (self: object, result: unknown) => void): void {
  if (proto === null) return;
  const descriptor = Object.getOwnPropertyDescriptor(proto, name);
  const original = descriptor?.value as Method | undefined;
  if (!descriptor || typeof original !== 'function' || original[WRAPPED]) return;
  const wrapped: Method = function (this: object, ...args: unknown[]) {
    const result = original.apply(this, args);
    note(this, result);
    return result;
  };
  wrapped[WRAPPED] = true;
  Object.defineProperty(proto, name, { ...descriptor, value: wrapped });
}

/** The prototype of `name` in this realm, or of an object `make` returns (a class not global here). */
function prototypeOf(name: string, make: () => object): object | null {
  const global = (globalThis as Record<string, unknown>)[name];
  if (typeof global === 'function' && typeof global.prototype === 'object' && global.prototype !== null) return global.prototype as object;
  return Object.getPrototypeOf(make()) as object | null;
}

/**
 * Starts noting, for the classes of `device`: encoders' devices (GPUDevice.createCommandEncoder),
 * finished encoders (GPUCommandEncoder.finish) and destroyed buffers (GPUBuffer.destroy). Costs one
 * lookup per call of those methods; idempotent.
 */
export function trackObjects(device: GPUDevice): void {
  const deviceProto = Object.getPrototypeOf(device) as object | null;
  if ((deviceProto as { createCommandEncoder?: Method } | null)?.createCommandEncoder?.[WRAPPED]) return;
  wrap(deviceProto, 'createCommandEncoder', (self, encoder) => {
    if (typeof encoder === 'object' && encoder !== null) encoderDevices.set(encoder, self as GPUDevice);
  });
  wrap(
    prototypeOf('GPUCommandEncoder', () => device.createCommandEncoder({ label: 'webgpu-dropout prototype probe' })),
    'finish',
    (self) => finishedEncoders.add(self),
  );
  wrap(
    prototypeOf('GPUBuffer', () => {
      const probe = device.createBuffer({ label: 'webgpu-dropout prototype probe', size: 4, usage: 0x8 /* COPY_DST */ });
      probe.destroy();
      return probe;
    }),
    'destroy',
    (self) => destroyedBuffers.add(self),
  );
}

/** The device `encoder` records for, if it was created while tracking was on. */
export function encoderDevice(encoder: GPUCommandEncoder): GPUDevice | undefined {
  return encoderDevices.get(encoder);
}

/** Whether finish() was called on `encoder` (while tracking was on). */
export function isFinished(encoder: GPUCommandEncoder): boolean {
  return finishedEncoders.has(encoder);
}

/** Whether destroy() was called on `buffer` (while tracking was on). */
export function isDestroyed(buffer: GPUBuffer): boolean {
  return destroyedBuffers.has(buffer);
}
