// Test-only access to Random123 (the Philox reference implementation): its known-answer vectors
// (librandom123-doc) and a C++ oracle built at test time from its headers (librandom123-dev).
// Missing pieces make the tests fail with a message saying what to install; they never skip.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** RANDOM123_KAT, when set, is the only place looked at; otherwise where Debian installs it. */
const KAT_CANDIDATES = process.env.RANDOM123_KAT
  ? [process.env.RANDOM123_KAT]
  : ['/usr/share/doc/librandom123-dev/tests/kat_vectors.gz', '/usr/share/doc/librandom123-doc/tests/kat_vectors.gz'];

export interface KatVector {
  rounds: number;
  counter: [number, number, number, number];
  key: [number, number];
  expected: [number, number, number, number];
}

/** The philox4x32 lines of Random123's kat_vectors (gzipped or plain). Throws if the file is missing. */
export function philoxKatVectors(): KatVector[] {
  const path = KAT_CANDIDATES.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `Random123 known-answer vectors not found (looked in ${KAT_CANDIDATES.join(', ')}): ` +
        `install Debian's librandom123-doc (npm run setup) or set RANDOM123_KAT to kat_vectors(.gz)`,
    );
  }
  const raw = readFileSync(path);
  const text = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
  const vectors: KatVector[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'philox4x32' || f.length !== 12) continue;
    const w = f.slice(2).map((h) => parseInt(h, 16) >>> 0);
    vectors.push({
      rounds: Number(f[1]),
      counter: [w[0]!, w[1]!, w[2]!, w[3]!],
      key: [w[4]!, w[5]!],
      expected: [w[6]!, w[7]!, w[8]!, w[9]!],
    });
  }
  return vectors;
}

const ORACLE_SOURCE = join(import.meta.dirname, 'oracle', 'philox_oracle.cpp');

/** Compiles tests/oracle/philox_oracle.cpp with g++ against Random123's headers; returns a runner. */
export function buildPhiloxOracle(): { run(blocks: Uint32Array): Uint32Array; dispose(): void } {
  const include = process.env.RANDOM123_INCLUDE ?? '/usr/include';
  if (!existsSync(join(include, 'Random123', 'philox.h'))) {
    throw new Error(`Random123/philox.h not found under ${include}: install librandom123-dev (npm run setup) or set RANDOM123_INCLUDE`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'philox-oracle-'));
  const exe = join(dir, 'philox_oracle');
  try {
    execFileSync(process.env.CXX ?? 'g++', ['-O1', '-std=c++11', '-I', include, '-o', exe, ORACLE_SOURCE], { stdio: 'pipe' });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`could not compile the Random123 oracle (needs g++, package g++): ${err.stderr?.toString() || err.message}`);
  }
  return {
    /** blocks: 6 words per block (c0..c3, k0, k1); returns 4 words per block. */
    run(blocks: Uint32Array): Uint32Array {
      const lines: string[] = [];
      for (let b = 0; b < blocks.length; b += 6) lines.push(Array.from(blocks.subarray(b, b + 6), hex).join(' '));
      const out = execFileSync(exe, { input: lines.join('\n') + '\n', maxBuffer: 1 << 28 }).toString('utf8');
      const words = out
        .trim()
        .split(/\s+/)
        .map((h) => parseInt(h, 16) >>> 0);
      if (words.length !== (blocks.length / 6) * 4)
        throw new Error(`oracle returned ${words.length} words for ${blocks.length / 6} blocks`);
      return Uint32Array.from(words);
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function hex(w: number): string {
  return w.toString(16).padStart(8, '0');
}
