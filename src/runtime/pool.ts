// A bounded pool of idle GPU buffers, keyed by exact size and usage, so repeated calls of the
// same shapes stop allocating. Buffers in use are the caller's; only idle ones count to the budget.
import { isDestroyed } from './tracking.js';

/**
 * A context's bounded pool of idle GPU buffers, keyed by exact size and usage, so repeated calls of
 * the same shapes stop allocating ({@link DropoutContext.pool}). Buffers in use are the caller's;
 * only idle ones count against `budgetBytes`, and idle buffers past it are destroyed. Use
 * `ctx.acquire` / `ctx.release` to take and give back buffers; read the counters here.
 */
export class BufferPool {
  private readonly idle = new Map<string, GPUBuffer[]>();
  private readonly owned = new WeakSet<GPUBuffer>();
  /** Buffers created and not handed back since: what `refund` may undo. */
  private readonly fresh = new WeakSet<GPUBuffer>();
  private idleBytes = 0;
  private liveBytes = 0;
  /** Most bytes the pool's buffers (in use and idle) ever held at once. */
  peakBytes = 0;
  /** Buffers created so far: a loop whose buffers come back to the pool stops adding to it (a
   * buffer created for a call that was then refused is not counted). */
  allocations = 0;

  /**
   * Made by the context.
   * @internal
   */
  constructor(
    private readonly device: GPUDevice,
    /** Most bytes of idle buffers kept for reuse (ContextOptions.poolBytes, default 256 MiB). */
    readonly budgetBytes: number,
  ) {}

  /**
   * A buffer of `size` bytes and `usage` (GPUBufferUsage flags): an idle one of the same size and
   * usage, or a new one. `mapped` always makes a new buffer, mapped for writing at creation: data
   * written that way cannot race with recorded-but-unsubmitted work on a reused buffer, as
   * queue.writeBuffer could. `ctx.acquire` is the checked form for storage buffers.
   */
  acquire(size: number, usage: number, label?: string, mapped = false): GPUBuffer {
    const list = mapped ? undefined : this.idle.get(key(size, usage));
    let reused = list?.pop();
    // An idle buffer destroyed since it came back (a caller kept using what it released) is forgotten.
    while (reused && isDestroyed(reused)) {
      this.idleBytes -= size;
      this.forget(reused);
      reused = list!.pop();
    }
    if (reused) {
      this.idleBytes -= size;
      if (label) reused.label = label;
      return reused;
    }
    const buffer = this.device.createBuffer({ size, usage, label: label ?? 'webgpu-dropout pooled', mappedAtCreation: mapped });
    this.owned.add(buffer);
    this.fresh.add(buffer);
    this.allocations++;
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  /** Takes a buffer back for reuse; buffers the pool did not make are left alone, and one that
   * was destroyed is forgotten (handing it out again would fail every later call of its size). */
  release(buffer: GPUBuffer): void {
    if (!this.owned.has(buffer)) return;
    if (isDestroyed(buffer)) return this.forget(buffer);
    this.fresh.delete(buffer);
    const k = key(buffer.size, buffer.usage);
    const list = this.idle.get(k) ?? [];
    if (list.includes(buffer)) return;
    list.push(buffer);
    this.idle.set(k, list);
    this.idleBytes += buffer.size;
    this.trim();
  }

  /**
   * Takes back a buffer acquired for a call that was then refused, as if it had not been acquired,
   * so that refused calls leave the pool's counts as they found them: a reused buffer goes back to
   * the idle list, one created for the call is destroyed and not counted in `allocations`. Only
   * for buffers no recorded work will use (the refused call's work never ran, and never will).
   * @internal
   */
  refund(buffer: GPUBuffer): void {
    if (!this.owned.has(buffer)) return;
    if (!this.fresh.has(buffer)) return this.release(buffer);
    this.allocations--;
    this.drop(buffer);
  }

  /**
   * Lets a buffer in use leave the pool: it is no longer counted, reused or destroyed here (for
   * work recorded into an encoder that may still be submitted, which destroying it would break),
   * until `adopt` takes it back; WebGPU frees it if nothing references it by then. False if the
   * pool did not own it.
   * @internal
   */
  disown(buffer: GPUBuffer): boolean {
    if (!this.owned.delete(buffer)) return false;
    this.liveBytes -= buffer.size;
    return true;
  }

  /**
   * Takes back a buffer this pool made and `disown`ed (counted again, in use until `release`).
   * @internal
   */
  adopt(buffer: GPUBuffer): void {
    if (this.owned.has(buffer)) return;
    this.owned.add(buffer);
    this.liveBytes += buffer.size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
  }

  /** Bytes currently held by the pool's buffers, in use or idle. */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Destroys every idle buffer (`ctx.destroy()` calls it); buffers in use are left alone. */
  clear(): void {
    for (const list of this.idle.values()) for (const b of list) this.drop(b);
    this.idle.clear();
    this.idleBytes = 0;
  }

  private trim(): void {
    for (const [k, list] of this.idle) {
      while (this.idleBytes > this.budgetBytes && list.length) {
        const b = list.shift()!;
        this.idleBytes -= b.size;
        this.drop(b);
      }
      if (!list.length) this.idle.delete(k);
      if (this.idleBytes <= this.budgetBytes) return;
    }
  }

  private drop(buffer: GPUBuffer): void {
    this.forget(buffer);
    buffer.destroy();
  }

  /** No longer counts or owns `buffer` (not in the idle lists: the caller took it out). */
  private forget(buffer: GPUBuffer): void {
    this.liveBytes -= buffer.size;
    this.owned.delete(buffer);
    this.fresh.delete(buffer);
  }
}

function key(size: number, usage: number): string {
  return `${size}:${usage}`;
}
