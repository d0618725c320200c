// Storage prelude for data the shader can name directly (f32, or f16 with `shader-f16`, as the
// alias S set before this file): the same interface as f16_packed.wgsl, over vec4<S> and S.

alias S4 = vec4<S>;
alias S1 = S;
const CELL: u32 = 1u;

fn unpack_s4(v: S4) -> vec4<f32> {
  return vec4<f32>(v);
}

fn pack_s4(v: vec4<f32>) -> S4 {
  return S4(v);
}

fn cell_of(e: u32) -> u32 {
  return e;
}

fn cell_get(w: S1, e: u32) -> f32 {
  return f32(w);
}

fn cell_set(w: S1, e: u32, v: f32) -> S1 {
  return S1(v);
}

fn cell_take(w: S1, src: S1, e: u32) -> S1 {
  return src;
}
