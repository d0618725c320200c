// After the declaration build: for every entry in package.json's exports, the `types@<6.0`
// declarations TypeScript 5 resolves, which reference @webgpu/types and re-export the entry's own.
// TypeScript 6 and later have WebGPU in lib.dom (as @types/web does) and read the plain
// declarations, which reference nothing, so the two definitions never meet. A TypeScript 5 project
// whose WebGPU types come from elsewhere (@types/web) sets the `webgpu-types-provided` custom
// condition and gets the plain declarations too. `typesVersions` routes TypeScript 5 to the same
// files where exports are not read (moduleResolution node10); this script checks that it agrees.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const root = join(import.meta.dirname, '..');
// The plain declarations must stay free of the reference, or TypeScript 6 and 7 see both definitions.
for (const file of readdirSync(join(root, 'dist'), { recursive: true })) {
  if (!file.endsWith('.d.ts') || file.endsWith('.legacy.d.ts')) continue;
  if (/<reference\s+types=["']@webgpu\/types["']/.test(readFileSync(join(root, 'dist', file), 'utf8'))) {
    throw new Error(`dist/${file} references @webgpu/types: only the .legacy.d.ts declarations may`);
  }
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const legacyPaths = pkg.typesVersions?.['<6.0'];
if (!legacyPaths) throw new Error('package.json: no typesVersions "<6.0"');
/** What typesVersions makes of a path, as TypeScript 5 applies it (exact key first, then `*`). */
const mapped = (path) => (legacyPaths[path] ?? legacyPaths['*']?.map((p) => p.replace('*', path)))?.[0];
for (const [entry, conditions] of Object.entries(pkg.exports)) {
  const versioned = conditions['types@<6.0'];
  const legacy = typeof versioned === 'string' ? versioned : versioned?.default;
  if (!legacy) throw new Error(`package.json exports ${entry}: no "types@<6.0" declarations`);
  if (typeof versioned === 'object' && versioned['webgpu-types-provided'] !== conditions.types) {
    throw new Error(`package.json exports ${entry}: "webgpu-types-provided" is not ${conditions.types}`);
  }
  if (!existsSync(join(root, conditions.types))) throw new Error(`${conditions.types} was not built`);
  const plain = basename(conditions.types, '.d.ts');
  writeFileSync(join(root, legacy), `/// <reference types="@webgpu/types" />\nexport * from './${plain}.js';\n`);
  // node10 reads `types` for the package itself and the subpath (`node`) for the others.
  const key = entry === '.' ? pkg.types.replace(/^\.\//, '') : entry.replace(/^\.\//, '');
  if (mapped(key)?.replace(/^\.\//, '') !== legacy.replace(/^\.\//, '')) {
    throw new Error(`package.json typesVersions "<6.0" maps ${key} to ${mapped(key)}, not ${legacy}`);
  }
}
