// Storage prelude for f16 data on adapters without `shader-f16`: the data stays 2 bytes per
// element in the caller's buffer, bound as u32 words (two halves each, element 2i in the low half)
// and converted in integer arithmetic on the bits, so every adapter gives the same results as the
// CPU reference (src/half.ts): exact widening (subnormals kept), arithmetic in f32, one rounding
// to nearest even, overflow to infinity, NaN as 0x7e00. The WGSL builtins unpack2x16float /
// pack2x16float are not used: WGSL leaves their rounding and subnormal handling open.
// The element-wise kernels reach the data only through S4 / S1 and the functions below.

// Four elements (two words): what one vec4 group of a body invocation loads and stores.
alias S4 = vec2<u32>;
// The unit a tail invocation reads and writes: one word, two elements.
alias S1 = u32;
// Elements per S1 cell: a tail invocation owns whole cells, so no two write one word.
const CELL: u32 = 2u;

// Two f16 bit patterns (low half first) as exact f32 values.
fn f16x2_to_f32(w: u32) -> vec2<f32> {
  let h = vec2<u32>(w & 0xffffu, w >> 16u);
  let sign = (h & vec2<u32>(0x8000u)) << vec2<u32>(16u);
  let em = h & vec2<u32>(0x7fffu);
  let normal = (em << vec2<u32>(13u)) + vec2<u32>(0x38000000u); // exponent rebiased by 127 - 15
  let sub = bitcast<vec2<u32>>(vec2<f32>(em) * 5.9604644775390625e-8); // mantissa * 2^-24, exact
  let special = (em << vec2<u32>(13u)) | vec2<u32>(0x7f800000u); // infinities and NaNs
  var bits = select(normal, sub, em < vec2<u32>(0x400u));
  bits = select(bits, special, em >= vec2<u32>(0x7c00u));
  return bitcast<vec2<f32>>(bits | sign);
}

// Two f32 values rounded to f16 (nearest, ties to even), packed low half first.
fn f32x2_to_f16(v: vec2<f32>) -> u32 {
  let x = bitcast<vec2<u32>>(v);
  let sign = (x >> vec2<u32>(16u)) & vec2<u32>(0x8000u);
  let a = x & vec2<u32>(0x7fffffffu);
  // Normal results: drop 13 mantissa bits rounding to even (a carry may reach the exponent, and
  // past the largest finite value it gives exactly the infinity pattern 0x7c00).
  let lsb = (a >> vec2<u32>(13u)) & vec2<u32>(1u);
  let normal = (a - vec2<u32>(0x38000000u) + vec2<u32>(0xfffu) + lsb) >> vec2<u32>(13u);
  // Subnormal results (|v| < 2^-14): the value in units of 2^-24, rounded to even.
  let e = min(a >> vec2<u32>(23u), vec2<u32>(112u));
  let shift = min(vec2<u32>(126u) - e, vec2<u32>(25u));
  let m = (a & vec2<u32>(0x7fffffu)) | vec2<u32>(0x800000u);
  let round_half = (vec2<u32>(1u) << (shift - vec2<u32>(1u))) - vec2<u32>(1u);
  let sub = (m + round_half + ((m >> shift) & vec2<u32>(1u))) >> shift;
  var h = select(normal, sub, a < vec2<u32>(0x38800000u));
  h = select(h, vec2<u32>(0x7c00u), a >= vec2<u32>(0x47800000u));
  h |= sign;
  h = select(h, vec2<u32>(0x7e00u), a > vec2<u32>(0x7f800000u)); // NaN, as the reference writes it
  return h.x | (h.y << 16u);
}

fn unpack_s4(v: S4) -> vec4<f32> {
  return vec4<f32>(f16x2_to_f32(v.x), f16x2_to_f32(v.y));
}

fn pack_s4(v: vec4<f32>) -> S4 {
  return S4(f32x2_to_f16(v.xy), f32x2_to_f16(v.zw));
}

// The cell holding element e, its value, and the cell with element e replaced by v (the other
// half kept bit for bit).
fn cell_of(e: u32) -> u32 {
  return e >> 1u;
}

fn cell_get(w: S1, e: u32) -> f32 {
  return f16x2_to_f32(w)[e & 1u];
}

fn cell_set(w: S1, e: u32, v: f32) -> S1 {
  let s = (e & 1u) * 16u;
  return (w & ~(0xffffu << s)) | ((f32x2_to_f16(vec2<f32>(v)) & 0xffffu) << s);
}

// Cell w with element e's bits taken from src (a copy: no conversion, NaN payloads kept).
fn cell_take(w: S1, src: S1, e: u32) -> S1 {
  let m = 0xffffu << ((e & 1u) * 16u);
  return (w & ~m) | (src & m);
}
