// Every kernel record against its WGSL: the uniform fields it declares are the struct the kernel
// reads (names, types, order), its section exists, its bindings are consistent, and the resource
// variables its entry points use are the record's bindings with the record's access modes. Pure
// text checks, no device.
import { describe, expect, it } from 'vitest';
import { kernels } from '../src/kernels/elementwise.js';
import { type KernelRecord, PARAMS_HEADER, PARAMS_OP_WORD, uniformLayout } from '../src/kernels/record.js';
import { composeShader, type Dtype, type F16Path, moduleFiles, shaderSource, shaderSources } from '../src/kernels/shaders.js';
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

/** A module-scope resource variable: `@group(g) @binding(n) var<space[, mode]> name: type;`. */
interface Resource {
  group: number;
  binding: number;
  space: string;
  /** The access mode as WebGPU sees it: `var<storage>` with no mode is read-only. */
  access: string;
  name: string;
  type: string;
}

/** WGSL without its comments. */
function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/** The resource variables of a (comment-free) module, in declaration order. */
function resources(code: string): Resource[] {
  const declaration = /@group\((\d+)\)\s*@binding\((\d+)\)\s*var<\s*(\w+)\s*(?:,\s*(\w+)\s*)?>\s*(\w+)\s*:\s*([^;]+?)\s*;/g;
  const out = [...code.matchAll(declaration)].map((m) => ({
    group: Number(m[1]),
    binding: Number(m[2]),
    space: m[3]!,
    access: m[4] ?? 'read',
    name: m[5]!,
    type: m[6]!,
  }));
  // A declaration in another form (attributes swapped, say) would go unchecked: fail instead.
  expect(out.length, 'every @binding is a declaration of the form parsed').toBe(code.match(/@binding\(/g)?.length ?? 0);
  return out;
}

/** The index just past the bracket closing the one at `open`. */
function closing(code: string, open: number): number {
  const pair = code[open] === '(' ? ')' : '}';
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === code[open]) depth++;
    else if (code[i] === pair && --depth === 0) return i + 1;
  }
  throw new Error(`unbalanced ${code[open]} at ${open}`);
}

/**
 * The functions of a (comment-free) module: name -> the identifiers its parameters and body refer
 * to, less member names (`.x`) and the names it declares itself (parameters, let, var, const). A
 * function that shadows a module-scope name is taken to use only its own.
 */
function functions(code: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of code.matchAll(/\bfn\s+(\w+)\s*\(/g)) {
    const paramsEnd = closing(code, m.index + m[0].length - 1);
    const open = code.indexOf('{', paramsEnd);
    const params = code.slice(m.index + m[0].length, paramsEnd - 1);
    const text = code.slice(paramsEnd, closing(code, open));
    const own = new Set([...params.matchAll(/(\w+)\s*:/g), ...text.matchAll(/\b(?:let|const|var(?:<[^>]*>)?)\s+(\w+)/g)].map((d) => d[1]!));
    const used = [...(params + text).matchAll(/(?<![.\w])[A-Za-z_]\w*/g)].map((t) => t[0]).filter((t) => !own.has(t));
    expect(out.has(m[1]!), `fn ${m[1]} declared once`).toBe(false);
    out.set(m[1]!, new Set(used));
  }
  return out;
}

/** The resource variables an entry point statically uses: those its call graph names. */
function reachable(fns: Map<string, Set<string>>, resourceNames: ReadonlySet<string>, entry: string): Set<string> {
  const seen = new Set<string>();
  const used = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const id of fns.get(f) ?? []) {
      if (resourceNames.has(id)) used.add(id);
      if (fns.has(id)) stack.push(id);
    }
  }
  return used;
}

/** One module a record is composed into: its storage type and f16 path. */
interface Variant {
  label: string;
  dtype: Dtype;
  f16Path: F16Path;
}
/** The modules the runtime composes for a record: the element-wise kernels' for every dtype and
 * f16 path (src/runtime/pipelines.ts), the model kit's 'custom' kernels' for f32 alone
 * (Dispatcher.custom). */
const allVariants: readonly Variant[] = [
  { label: 'f32', dtype: 'f32', f16Path: 'native' },
  { label: 'f16 native', dtype: 'f16', f16Path: 'native' },
  { label: 'f16 packed', dtype: 'f16', f16Path: 'packed' },
];
const variantsOf = (k: KernelRecord): readonly Variant[] => (k.dispatch === 'custom' ? allVariants.slice(0, 1) : allVariants);

/** The WGSL type of a record's uniform field (a 64-bit field is a vec2<u32>, lo then hi). */
const wgslType = (t: string): string => (t === 'u64' ? 'vec2<u32>' : t);

/** The broadcast table of the 'broadcast' kernels (shaders/structured.wgsl): a uniform their WGSL
 * uses that is not a record binding, since the runtime binds it itself at binding 4 of their
 * layout (Bindings.layout, withAux). Their mask table (binding 6) needs no such rule: its reads
 * are static uses even where TABLE is false, so it is a record binding like any other. */
const BROADCAST_TABLE = { binding: 4, type: 'Broadcast' } as const;

/**
 * Every mismatch between `k`'s bindings and the resource variables its entry points use in `code`,
 * one line each naming the record, the binding and the mismatch. The storage variables an entry
 * point uses must be record bindings with the same access (a read-only binding a shader writes,
 * or a writable one it declares read-only, fails the explicit layout), every record binding must
 * be used by one of its entry points (body or tail: they share the layout), binding 0 must be the
 * kernel's uniform, and the only other uniform is the broadcast table of 'broadcast' kernels.
 * Variables no entry point of the record uses are left alone: files serve several kernels, and
 * variables share a binding number where no entry point uses both (data.wgsl's x4 and x1).
 */
function bindingMismatches(k: KernelRecord, variant: string, code: string): string[] {
  const problems: string[] = [];
  const fail = (binding: number, what: string) => problems.push(`${k.name} [${variant}]: binding ${binding}: ${what}`);
  const text = stripComments(code);
  const declared = resources(text);
  const byName = new Map(declared.map((r) => [r.name, r]));
  const fns = functions(text);
  const recordAt = new Map(Object.entries(k.bindings).map(([name, b]) => [b.binding, { name, ...b }]));
  const used = new Map<string, Resource>();
  for (const entry of [k.entry, k.tail].filter((e): e is string => e !== undefined)) {
    if (!fns.has(entry)) problems.push(`${k.name} [${variant}]: entry point ${entry} is not defined`);
    for (const name of reachable(fns, new Set(byName.keys()), entry)) {
      const r = byName.get(name)!;
      used.set(name, r);
      const decl = `${r.name} (var<${r.space}, ${r.access}>, used by ${entry})`;
      const b = recordAt.get(r.binding);
      if (r.group !== 0) fail(r.binding, `${decl} is in group ${r.group}, not 0`);
      if (r.space === 'storage') {
        if (!b) fail(r.binding, `WGSL declares storage ${decl}, the record has no binding ${r.binding}`);
        else if (b.access !== r.access) fail(r.binding, `WGSL ${decl} is ${r.access}, record binding '${b.name}' is ${b.access}`);
      } else if (r.space !== 'uniform') {
        fail(r.binding, `${decl} is in address space ${r.space}`);
      } else if (b) {
        fail(r.binding, `WGSL declares uniform ${decl}, record binding '${b.name}' is storage`);
      } else if (r.binding === BROADCAST_TABLE.binding && k.mask === 'broadcast') {
        if (r.type !== BROADCAST_TABLE.type) fail(r.binding, `uniform ${decl} is ${r.type}, not the broadcast table`);
      } else if (r.binding !== 0) {
        fail(r.binding, `WGSL declares uniform ${decl}; the runtime binds uniforms at 0 (and at 4 for 'broadcast' kernels)`);
      }
    }
  }
  for (const [n, b] of recordAt) {
    if ([...used.values()].some((r) => r.binding === n && r.space === 'storage')) continue;
    const unused = declared.filter((r) => r.binding === n && r.space === 'storage').map((r) => r.name);
    const why = unused.length ? `is declared (${unused.join(', ')}) but used by no entry point` : 'is declared by no storage variable';
    fail(n, `record binding '${b.name}' (${b.access}) ${why}`);
  }
  // Binding 0: the kernel's uniform, declared only as a uniform, and used.
  for (const r of declared) {
    if (r.binding === 0 && r.space !== 'uniform') fail(0, `${r.name} is var<${r.space}>, not the uniform`);
  }
  const uniform = [...used.values()].filter((r) => r.binding === 0 && r.space === 'uniform');
  if (uniform.length !== 1) fail(0, `entry points use ${uniform.length} uniforms (${uniform.map((r) => r.name).join(', ')}), not one`);
  const fields = JSON.stringify(Object.entries(k.uniforms).map(([n, t]) => [n, wgslType(t)]));
  for (const r of uniform) {
    if (k.dispatch !== 'custom') {
      if (r.type !== 'Params') fail(0, `uniform ${r.name} is ${r.type}, not Params`);
    } else if (JSON.stringify(structs(code).get(r.type)) !== fields) {
      fail(0, `uniform ${r.name}: ${r.type} is not the record's uniforms (${Object.keys(k.uniforms).join(', ')})`);
    }
  }
  return problems;
}

describe('kernel records', () => {
  it("Params is PARAMS_HEADER, then the kernel's fields at the next 16 bytes, where uniformLayout packs them", () => {
    const params = structs(shaderSources.elementwise).get('Params')!;
    expect(params).toEqual(Object.entries(PARAMS_HEADER).map(([name, type]) => [name, wgslType(type)]));
    expect(shaderSources.elementwise).toMatch(/@align\(16\) op: Op,\n\}/);
    expect(PARAMS_OP_WORD).toBe(16); // 13 header words, rounded up to 16 bytes
    expect(uniformLayout(kernels.dropoutForward).words).toEqual([]);
    expect(uniformLayout(structuredKernels.alpha).words).toEqual([16, 17, 18]);
  });

  for (const k of records) {
    it(`${k.name}: uniforms, section and bindings match its WGSL`, () => {
      if (k.section !== undefined) {
        // composeShader drops a section no file has, so a misspelt one would compile to something else.
        const marker = new RegExp(`^// ==== kernel ${k.section}\\b`, 'm');
        expect(k.shader.some((f) => marker.test(shaderSource(f)))).toBe(true);
      }
      const code = composeShader(moduleFiles(k), 'f32', 'native', k.section);
      expect(code).toMatch(new RegExp(`fn ${k.entry}\\(`));
      if (k.tail) expect(code).toMatch(new RegExp(`fn ${k.tail}\\(`));
      const fields = Object.entries(k.uniforms);
      const found = structs(code);
      if (k.dispatch === 'custom') {
        // The kernel's own uniform struct at binding 0.
        expect([...found.values()]).toContainEqual(fields.map(([name, type]) => [name, wgslType(type)]));
      } else {
        expect(code.match(/struct Op \{/g)).toHaveLength(1); // declared once: by the section, or by no_op.wgsl
        expect(found.get('Op')).toEqual(fields.length ? fields.map(([name, type]) => [name, wgslType(type)]) : [['unused', 'u32']]);
      }
      const numbers = Object.values(k.bindings).map((b) => b.binding);
      expect(new Set(numbers).size).toBe(numbers.length);
      expect(numbers).not.toContain(0); // the uniform
      if (k.dispatch !== 'custom') expect(numbers).not.toContain(4); // the broadcast table's uniform
      // A broadcast kernel reads the broadcast table and binds the mask table; no other kernel does.
      expect('maskTable' in k.bindings).toBe(k.mask === 'broadcast');
    });

    for (const v of variantsOf(k)) {
      it(`${k.name} [${v.label}]: its bindings are the resource variables its entry points use, with their access`, () => {
        const code = composeShader(moduleFiles(k), v.dtype, v.f16Path, k.section);
        expect(bindingMismatches(k, v.label, code)).toEqual([]);
      });
    }
  }

  it('the binding check reads `var<storage>` as read, follows calls, and names the mismatches', () => {
    const code = `
struct Params { unused: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read_write> spare: array<u32>; // used by no entry point
fn helper(i: u32) -> u32 { let dst = 1u; return src[i] + dst + params.unused; }
fn entry(@builtin(global_invocation_id) gid: vec3<u32>) { dst[gid.x] = helper(gid.x); }`;
    const k = { name: 'probe', shader: [], entry: 'entry', dispatch: 'element', mask: 'none', uniforms: {} } as const;
    const x = { binding: 1, unit: 'word', access: 'read' } as const;
    const y = { binding: 2, unit: 'word', access: 'read_write' } as const;
    expect(bindingMismatches({ ...k, bindings: { x, y } }, 'f32', code)).toEqual([]);
    expect(bindingMismatches({ ...k, bindings: { x: { ...x, access: 'read_write' }, y, z: { ...y, binding: 5 } } }, 'f32', code)).toEqual([
      "probe [f32]: binding 1: WGSL src (var<storage, read>, used by entry) is read, record binding 'x' is read_write",
      "probe [f32]: binding 5: record binding 'z' (read_write) is declared by no storage variable",
    ]);
    expect(bindingMismatches({ ...k, bindings: { y } }, 'f32', code)).toEqual([
      'probe [f32]: binding 1: WGSL declares storage src (var<storage, read>, used by entry), the record has no binding 1',
    ]);
    expect(bindingMismatches({ ...k, bindings: { x, y, spare: { ...y, binding: 3 } } }, 'f32', code)).toEqual([
      "probe [f32]: binding 3: record binding 'spare' (read_write) is declared (spare) but used by no entry point",
    ]);
  });
});
