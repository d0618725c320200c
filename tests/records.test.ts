// Every kernel record against its WGSL: the uniform fields it declares are the struct the kernel
// reads (names, types, order), its section exists, and its bindings are consistent. Pure text
// checks, no device.
import { describe, expect, it } from 'vitest';
import { kernels } from '../src/kernels/elementwise.js';
import { uniformLayout, type KernelRecord } from '../src/kernels/record.js';
import { composeShader, moduleFiles, shaderSources } from '../src/kernels/shaders.js';
import { structuredKernels } from '../src/kernels/structured.js';
import { modelKernels } from '../src/model/kernels.js';

const records: KernelRecord[] = [...Object.values(kernels), ...Object.values(structuredKernels), ...Object.values(modelKernels)];

/** The structs of a WGSL module: name -> [field, type] in declaration order. */
function structs(code: string): Map<string, [string, string][]> {
  const out = new Map<string, [string, string][]>();
  for (const m of code.matchAll(/struct (\w+) \{([^}]*)\}/g)) {
    const fields = [...m[2]!.matchAll(/^\s*(\w+):\s*([\w<>]+)/gm)].map((f) => [f[1]!, f[2]!] as [string, string]);
    out.set(m[1]!, fields);
  }
  return out;
}

describe('kernel records', () => {
  it("Params places the kernel's fields at byte 64, where uniformLayout packs them", () => {
    expect(shaderSources.elementwise).toMatch(/@align\(16\) op: Op,\n\}/);
    expect(uniformLayout(kernels.dropoutForward).base).toBe(16);
  });

  for (const k of records) {
    it(`${k.name}: uniforms, section and bindings match its WGSL`, () => {
      if (k.section !== undefined) {
        // composeShader drops a section no file has, so a misspelt one would compile to something else.
        const marker = new RegExp(`^// ==== kernel ${k.section}\\b`, 'm');
        expect(k.shader.some((f) => marker.test(shaderSources[f]))).toBe(true);
      }
      const code = composeShader(moduleFiles(k), 'f32', 'native', k.section);
      expect(code).toMatch(new RegExp(`fn ${k.entry}\\(`));
      if (k.tail) expect(code).toMatch(new RegExp(`fn ${k.tail}\\(`));
      const fields = Object.entries(k.uniforms);
      const found = structs(code);
      if (k.dispatch === 'custom') {
        // The kernel's own uniform struct at binding 0.
        expect([...found.values()]).toContainEqual(fields);
      } else {
        expect(code.match(/struct Op \{/g)).toHaveLength(1); // declared once: by the section, or by no_op.wgsl
        expect(found.get('Op')).toEqual(fields.length ? fields : [['unused', 'u32']]);
      }
      const numbers = Object.values(k.bindings).map((b) => b.binding);
      expect(new Set(numbers).size).toBe(numbers.length);
      expect(numbers).not.toContain(0); // the uniform
      if (k.dispatch !== 'custom') expect(numbers).not.toContain(4); // the broadcast table's uniform
      // A broadcast kernel reads the broadcast table and binds the mask table; no other kernel does.
      expect('table' in k.bindings).toBe(k.mask === 'broadcast');
    });
  }
});
