// Option names are checked: an option the call does not take would otherwise be ignored, and the
// call would quietly do something else (a misspelt `noiseShape` drops element-wise, a `layout`
// passed to a layer's call is lost). TypeScript catches these at compile time; JavaScript callers
// get an InvalidArgumentError naming the option, with the closest name the call does take.
import { Got, InvalidArgumentError } from './errors.js';

export type OptionNames = ReadonlySet<string>;

/** The option names of T, spelt once as an object literal, so that the compiler reports a name
 * missing from the list or one T does not have. */
export function optionNames<T>(names: { readonly [K in keyof Required<T>]: true }): OptionNames {
  return new Set(Object.keys(names));
}

/** Names other libraries use for ours (Keras' rate, timm's drop_prob). */
const ALIASES: Readonly<Record<string, string>> = { rate: 'p', dropprob: 'p', prob: 'p', droprate: 'p' };

const normalized = (name: string) => name.toLowerCase().replace(/[-_]/g, '');

/** Edit distance, for suggestions only (names are short). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The known name `key` most likely stands for, if any: the same letters in another case or with
 * separators, another library's name, or a typo of at most two letters. */
export function closestOption(key: string, known: OptionNames): string | undefined {
  const k = normalized(key);
  const names = [...known];
  const alias = ALIASES[k];
  return (
    names.find((n) => normalized(n) === k) ??
    (alias !== undefined && known.has(alias) ? alias : undefined) ??
    (k.length >= 4 ? names.find((n) => distance(normalized(n), k) <= 2) : undefined)
  );
}

/**
 * Rejects an option `known` does not list. Options set to undefined are left alone: they ask for
 * the default, whatever their name. `where` prefixes the option in the error's `argument`.
 */
export function checkOptionNames(opts: object, known: OptionNames, where = 'options'): void {
  for (const key of Object.keys(opts)) {
    if (known.has(key) || (opts as Record<string, unknown>)[key] === undefined) continue;
    const guess = closestOption(key, known);
    throw new InvalidArgumentError(
      `${where}.${key}`,
      `one of the options ${[...known].join(', ')}`,
      new Got(`an option this call does not take${guess === undefined ? '' : ` (did you mean ${guess}?)`}`),
    );
  }
}

/**
 * Checks an options object: anything else is refused as `argument` not being `expected` (with
 * `got` as what came: pass `opts` itself to show it, or nothing), then every name must be one
 * `known` lists.
 */
export function checkOptionsObject(
  opts: unknown,
  known: OptionNames,
  argument: string,
  expected: string,
  got?: unknown,
): asserts opts is object {
  if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError(argument, expected, got);
  checkOptionNames(opts, known);
}
