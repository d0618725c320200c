// Whether the context can still do work: device loss and destroy(), and the waiters that a loss
// rejects (an op waiting on a submit or a readback when the device goes away).
import { DeviceLostError } from '../errors.js';

export class Liveness {
  private lostReason: string | null = null;
  private readonly waiters = new Set<(e: Error) => void>();
  destroyed = false;

  /** Why the device was lost, or null while it is not. */
  get lost(): string | null {
    return this.lostReason;
  }

  /** Throws DeviceLostError once the device is gone or the context destroyed. */
  check(): void {
    if (this.lostReason !== null) throw new DeviceLostError(this.lostReason);
    if (this.destroyed) throw new DeviceLostError('the DropoutContext was destroyed');
  }

  /** Rejects with DeviceLostError if the device is lost before `work` settles. */
  guard<T>(work: Promise<T>): Promise<T> {
    if (this.lostReason !== null) return Promise.reject(new DeviceLostError(this.lostReason));
    return new Promise<T>((resolve, reject) => {
      const onLost = (e: Error) => reject(e);
      this.waiters.add(onLost);
      work.then(resolve, reject).finally(() => this.waiters.delete(onLost));
    });
  }

  /** Records the loss (the first reason wins) and rejects every waiter. */
  lose(reason: string): void {
    this.lostReason ??= reason;
    const error = new DeviceLostError(reason);
    for (const w of this.waiters) w(error);
    this.waiters.clear();
  }
}
