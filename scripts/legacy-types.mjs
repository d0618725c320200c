// After the declaration build: for every entry in package.json's exports, the `types@<6.0`
// declarations TypeScript 5 resolves, which reference @webgpu/types and re-export the entry's own.
// TypeScript 6 and later have WebGPU in lib.dom (as @types/web does) and read the plain
// declarations, which reference nothing, so the two definitions never meet.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const root = join(import.meta.dirname, '..');
const { exports } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const [entry, conditions] of Object.entries(exports)) {
  const legacy = conditions['types@<6.0'];
  if (!legacy) throw new Error(`package.json exports ${entry}: no "types@<6.0" condition`);
  const plain = basename(conditions.types, '.d.ts');
  writeFileSync(join(root, legacy), `/// <reference types="@webgpu/types" />\nexport * from './${plain}.js';\n`);
}
