// Storage prelude for data the shader can name directly (f32, or f16 with `shader-f16`, as the
// alias S set before this file): the same interface as f16_packed.wgsl, over vec4<S> and S.
// A module gets the common part and the `// ==== storage <dtype>` section of its S
// (src/kernels/shaders.ts), which converts f32 results to S.

alias S4 = vec4<S>;
alias S1 = S;
const CELL: u32 = 1u;

fn unpack_s4(v: S4) -> vec4<f32> {
  return vec4<f32>(v);
}

fn pack_s4(v: vec4<f32>) -> S4 {
  return f32_to_s4(v);
}

fn cell_of(e: u32) -> u32 {
  return e;
}

fn cell_get(w: S1, e: u32) -> f32 {
  return f32(w);
}

fn cell_set(w: S1, e: u32, v: f32) -> S1 {
  return f32_to_s1(v);
}

fn cell_take(w: S1, src: S1, e: u32) -> S1 {
  return src;
}

// ==== storage f32
// Stored as computed, NaN bits included, as the reference stores them.
fn f32_to_s4(v: vec4<f32>) -> S4 {
  return v;
}

fn f32_to_s1(v: f32) -> S1 {
  return v;
}

// ==== storage f16
// The compiler's conversion (nearest even, subnormals kept, overflow to infinity), except that a
// NaN is stored as 0x7e00, the reference's pattern, like f16_packed.wgsl does: the conversion
// leaves a NaN's sign and payload to the device (lavapipe keeps the sign). NaN is told from the f32
// bits and the result written on the f16 bits, since WGSL lets a compiler assume that float
// operations never see a NaN.
fn f32_to_s4(v: vec4<f32>) -> S4 {
  let nan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
  let m = select(vec4<u32>(0u), vec4<u32>(0xffffu), nan);
  let halves = vec2<u32>(m.x | (m.y << 16u), m.z | (m.w << 16u)); // element 4j + 2k in word k's low half
  let h = bitcast<vec2<u32>>(S4(v));
  return bitcast<S4>((h & ~halves) | (vec2<u32>(0x7e007e00u) & halves));
}

fn f32_to_s1(v: f32) -> S1 {
  let nan = (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
  let h = bitcast<u32>(vec2<S>(S(v)));
  return bitcast<vec2<S>>(select(h, 0x7e007e00u, nan)).x;
}
