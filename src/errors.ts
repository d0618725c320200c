/** Base class of every error this library throws on purpose. */
export class DropoutError extends Error {
  /** The class's name ('DropoutError'; each subclass sets its own), as printed in stack traces. */
  override name = 'DropoutError';
}

/** A bad argument: `argument` names it, the message says what was expected. Nothing was written. */
export class InvalidArgumentError extends DropoutError {
  /** Always 'InvalidArgumentError'. */
  override name = 'InvalidArgumentError';
  /**
   * @param argument - The argument at fault, as the caller spelt it: `'x'`, `'options.seed'`,
   *   `'state.p'`, or `'options.<name>'` for an option the call does not take.
   * @param expected - What the argument must be; the message reads `<argument>: expected <expected>, got <got>`.
   * @param got - The value that came (left out of the message when undefined).
   */
  constructor(
    /** The argument at fault (e.g. `'p'`, `'options.noiseShape'`, `'state.seed'`), for programmatic handling. */
    readonly argument: string,
    expected: string,
    got?: unknown,
  ) {
    super(`${argument}: expected ${expected}${got === undefined ? '' : `, got ${describe(got)}`}`);
  }
}

/** Something the environment lacks: f16Path 'native' without the `shader-f16` feature, no WebGPU or no adapter,
 * no `webgpu` package or lavapipe in Node, a request larger than one storage binding can hold. */
export class UnsupportedError extends DropoutError {
  /** Always 'UnsupportedError'. */
  override name = 'UnsupportedError';
}

/** The GPU device was lost (or destroyed); pending work was rejected with this error. */
export class DeviceLostError extends DropoutError {
  /** Always 'DeviceLostError'. */
  override name = 'DeviceLostError';
}

/** WebGPU rejected a submission (a validation error, caught by the context's error scopes);
 * nothing from it ran. */
export class GpuValidationError extends DropoutError {
  /** Always 'GpuValidationError'. */
  override name = 'GpuValidationError';
}

/** A description of what came, printed as is (plain strings from callers are quoted). */
export class Got {
  constructor(readonly text: string) {}
}

function describe(v: unknown): string {
  if (v instanceof Got) return v.text;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(describe).join(', ')}]`;
  if (v === null || v === undefined) return String(v);
  return (v as object).constructor?.name ?? typeof v;
}
