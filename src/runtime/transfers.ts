// Buffers in and out: pooled buffers (acquire, release), temporaries given back once the work on
// them is submitted (retire, ownEncoder, submitted), uploads, and the one readback path.
import { DeviceLostError, Got, InvalidArgumentError } from '../errors.js';
import type { Liveness } from './liveness.js';
import type { BufferPool } from './pool.js';
import type { Submission } from './submission.js';
import { isDestroyed } from './tracking.js';
import { isGpuBuffer, MAP_MODE_READ, Usage } from './units.js';

export class Transfers {
  /** Encoders of the library's own (ownEncoder) and the temporaries retired into each until it is submitted. */
  private readonly ownEncoders = new WeakMap<GPUCommandEncoder, GPUBuffer[]>();
  /** Callers' encoders and the temporaries retired into each, out of the pool until `submitted` (else left to GC). */
  private readonly callerEncoders = new WeakMap<GPUCommandEncoder, GPUBuffer[]>();

  constructor(
    private readonly device: GPUDevice,
    private readonly pool: BufferPool,
    private readonly liveness: Liveness,
    private readonly submission: Submission,
  ) {}

  /** Throws unless a buffer of `bytes` bytes fits this device's `maxBufferSize`: `argument` names what set the size
   * (with its `value`), `what` says which buffer it is. Ops call it before any work for the buffers
   * they create (outputs, tables, staging), so that WebGPU never sees one too large. */
  checkBufferSize(bytes: number, argument: string, value: unknown, what = 'the output buffer'): void {
    const max = this.device.limits.maxBufferSize;
    if (bytes > max) {
      throw new InvalidArgumentError(
        argument,
        `a size for which ${what} fits this device's maxBufferSize of ${max} bytes (it would take ${bytes} bytes)`,
        value,
      );
    }
  }

  /** Checks that `buffer` is a GPUBuffer with STORAGE usage and at least `bytes` bytes. */
  checkStorage(buffer: unknown, argument: string, bytes: number): void {
    if (!isGpuBuffer(buffer)) throw new InvalidArgumentError(argument, 'a GPUBuffer', buffer);
    if (isDestroyed(buffer))
      throw new InvalidArgumentError(argument, 'a live GPUBuffer', new Got('a destroyed GPUBuffer (its destroy() was called)'));
    if (!(buffer.usage & Usage.STORAGE)) {
      throw new InvalidArgumentError(argument, 'a GPUBuffer with STORAGE usage', new Got(`usage 0x${buffer.usage.toString(16)}`));
    }
    if (buffer.size < bytes) {
      throw new InvalidArgumentError(argument, `a GPUBuffer of at least ${bytes} bytes`, new Got(`${buffer.size} bytes`));
    }
    // A mapped buffer (or one being mapped) cannot be used by GPU work: say so before recording.
    const mapState = buffer.mapState; // a native getter: read once
    if (mapState !== undefined && mapState !== 'unmapped') {
      throw new InvalidArgumentError(
        argument,
        'an unmapped GPUBuffer (call unmap() first)',
        new Got(`a buffer whose mapState is '${mapState}'`),
      );
    }
  }

  acquire(bytes: number, label?: string): GPUBuffer {
    this.liveness.check();
    if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0)
      throw new InvalidArgumentError('bytes', 'a finite byte count >= 0', bytes);
    const max = this.device.limits.maxBufferSize;
    if (Math.ceil(bytes / 4) * 4 > max)
      throw new InvalidArgumentError('bytes', `a byte count up to this device's maxBufferSize (${max})`, bytes);
    return this.pool.acquire(Math.max(4, Math.ceil(bytes / 4) * 4), Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, label);
  }

  release(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /** Gives back a buffer `acquire` took for a call that was then refused, as if never taken. */
  refund(buffer: GPUBuffer): void {
    this.pool.refund(buffer);
  }

  /**
   * Gives back a temporary of the library's own whose last use was recorded into `encoder`, once
   * that work is submitted: a later op gets the buffer from the pool, and recorded-but-unsubmitted
   * work on it would otherwise overwrite that op's result when it finally runs.
   * - No encoder: the work went into the context's batch, which the caller awaited (so it was
   *   submitted): back to the pool now.
   * - Any encoder: back to the pool when `submitted(encoder)` is called. Until then a caller's
   *   encoder's temporaries are out of the pool (not counted, never handed out, not destroyed,
   *   which would break that submit); if `submitted` never comes, WebGPU frees them once they are
   *   unreferenced, when JavaScript collects the encoder.
   */
  retire(buffer: GPUBuffer, encoder?: GPUCommandEncoder): void {
    if (encoder === undefined) return this.pool.release(buffer);
    const own = this.ownEncoders.get(encoder);
    if (own) return void own.push(buffer);
    if (!this.pool.disown(buffer)) return;
    const list = this.callerEncoders.get(encoder);
    if (list) list.push(buffer);
    else this.callerEncoders.set(encoder, [buffer]);
  }

  /** An encoder the library records into and submits itself (see `retire`). */
  ownEncoder(label: string): GPUCommandEncoder {
    const encoder = this.device.createCommandEncoder({ label });
    this.ownEncoders.set(encoder, []);
    return encoder;
  }

  /** See DropoutContext.submitted. */
  submitted(encoder: GPUCommandEncoder): void {
    const own = this.ownEncoders.get(encoder);
    const theirs = this.callerEncoders.get(encoder);
    this.ownEncoders.delete(encoder);
    this.callerEncoders.delete(encoder);
    if (this.liveness.destroyed) return;
    for (const b of own ?? []) this.pool.release(b);
    for (const b of theirs ?? []) {
      this.pool.adopt(b);
      this.pool.release(b);
    }
  }

  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    this.liveness.check();
    if (!ArrayBuffer.isView(data)) throw new InvalidArgumentError('data', 'a typed array or DataView', data);
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    this.checkBufferSize(size, 'data', new Got(`${data.byteLength} bytes`), 'its buffer');
    const buffer = this.pool.acquire(size, Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST, label, true);
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  async readBytes(buffer: GPUBuffer, bytes: number, byteOffset = 0, argument = 'buffer'): Promise<ArrayBuffer> {
    this.liveness.check();
    if (!isGpuBuffer(buffer)) throw new InvalidArgumentError(argument, 'a GPUBuffer', buffer);
    if (isDestroyed(buffer))
      throw new InvalidArgumentError(argument, 'a live GPUBuffer', new Got('a destroyed GPUBuffer (its destroy() was called)'));
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new InvalidArgumentError('bytes', 'a whole byte count >= 0', bytes);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % 4) {
      throw new InvalidArgumentError('byteOffset', 'a whole byte offset >= 0, a multiple of 4', byteOffset);
    }
    if (!(buffer.usage & Usage.COPY_SRC)) {
      throw new InvalidArgumentError(
        argument,
        'a GPUBuffer with COPY_SRC usage to read it back',
        new Got(`usage 0x${buffer.usage.toString(16)}`),
      );
    }
    const size = Math.ceil(bytes / 4) * 4;
    if (byteOffset + size > buffer.size) {
      throw new InvalidArgumentError(
        argument,
        `a readable range inside its ${buffer.size} bytes`,
        new Got(`[${byteOffset}, ${byteOffset + size})`),
      );
    }
    // A failed batch has already rejected the ops that recorded it; reading is still valid.
    await this.submission.flush().catch(() => undefined);
    if (size === 0) return new ArrayBuffer(0);
    const staging = this.pool.acquire(size, Usage.MAP_READ | Usage.COPY_DST, 'readback');
    const validate = this.submission.validate;
    try {
      // The copy is recorded and finished inside the scope: a buffer of another device fails there.
      if (validate) this.device.pushErrorScope('validation');
      const encoder = this.device.createCommandEncoder({ label: 'readback' });
      encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
      this.device.queue.submit([encoder.finish()]);
      this.submission.noteSubmit();
      if (validate) {
        const error = await this.liveness.guard(this.device.popErrorScope());
        if (error) throw await this.submission.explain(error, [{ buffer, argument }]);
      }
      await this.liveness.guard(staging.mapAsync(MAP_MODE_READ, 0, size));
      const out = staging.getMappedRange(0, size).slice(0, bytes);
      staging.unmap();
      this.pool.release(staging);
      return out;
    } catch (e) {
      // A refused read gives its staging buffer back, as if never taken (unless a mapping is still pending on it).
      if (staging.mapState === 'unmapped') this.pool.refund(staging);
      const lost = this.liveness.lost;
      if (lost !== null && !(e instanceof DeviceLostError)) throw new DeviceLostError(lost);
      throw e;
    }
  }
}
