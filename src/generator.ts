// A generator owns a 64-bit seed and a 64-bit stream counter: each random op that draws from it
// takes the next stream, so successive calls get independent masks and any call can be replayed
// from the (seed, stream) it returned.
import { toU64, type U64, U64_MAX } from './contract.js';
import { InvalidArgumentError } from './errors.js';

export class PhiloxGenerator {
  readonly seed: bigint;
  private next: bigint;

  constructor(seed: U64, stream: U64 = 0n) {
    this.seed = toU64(seed, 'seed');
    this.next = toU64(stream, 'stream');
  }

  /** The stream the next call will use. */
  get stream(): bigint {
    return this.next;
  }

  /** Returns the next stream and advances past it. */
  take(): bigint {
    if (this.next > U64_MAX) throw new InvalidArgumentError('generator', 'an unexhausted stream counter (2^64 streams used)');
    return this.next++;
  }
}
