// A generator owns a 64-bit seed and a 64-bit stream counter: each random op that draws from it
// takes the next stream, so successive calls get independent masks and any call can be replayed
// from the (seed, stream) it returned.
import { toU64, type U64, U64_MAX } from './contract.js';
import { InvalidArgumentError } from './errors.js';

/**
 * A source of (seed, stream) pairs: a 64-bit seed and a 64-bit stream counter. Each op or layer call
 * that draws from it takes the next stream, so successive calls get independent masks, and a call
 * can be replayed from the (seed, stream) in the state it returned.
 *
 * ```ts
 * const generator = new PhiloxGenerator(7n);
 * const a = await dropout(ctx, x, { p: 0.1, generator }); // stream 0
 * const b = await dropout(ctx, x, { p: 0.1, generator }); // stream 1
 * ```
 */
export class PhiloxGenerator {
  /** The Philox key of every stream this generator hands out (64-bit). */
  readonly seed: bigint;
  private next: bigint;

  /**
   * @param seed - The 64-bit seed: a bigint or a non-negative safe integer.
   * @param stream - The first stream `take()` returns (default 0).
   * @throws {@link InvalidArgumentError} (argument `seed` or `stream`) unless each is an integer in 0..2^64-1.
   */
  constructor(seed: U64, stream: U64 = 0n) {
    this.seed = toU64(seed, 'seed');
    this.next = toU64(stream, 'stream');
  }

  /** The stream the next call will use. */
  get stream(): bigint {
    return this.next;
  }

  /**
   * Returns the next stream and advances past it.
   * @throws {@link InvalidArgumentError} (argument `generator`) once all 2^64 streams have been taken.
   */
  take(): bigint {
    if (this.next > U64_MAX) throw new InvalidArgumentError('generator', 'an unexhausted stream counter (2^64 streams used)');
    return this.next++;
  }
}
