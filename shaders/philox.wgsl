// Philox4x32-10 (Salmon et al., SC'11), bit-exact with Random123's philox4x32_R(10, ctr, key).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Exact 32x32 -> 64-bit product, returned as (lo, hi). WGSL has no 64-bit integers, so the high
// word is assembled from 16-bit partial products; `mid` carries every bit that crosses bit 32
// (the sum is < 2^18, so it cannot overflow).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(a * b, hi);
}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
  let r0 = mulhilo(PHILOX_M0, c.x);
  let r1 = mulhilo(PHILOX_M1, c.z);
  return vec4<u32>(r1.y ^ c.y ^ k.x, r1.x, r0.y ^ c.w ^ k.y, r0.x);
}

// Ten rounds; the key is bumped between rounds (nine bumps), as in Random123.
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 9u; r++) {
    c = philox_round(c, k);
    k += vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return philox_round(c, k);
}

// 64-bit (lo, hi) + 32-bit, with carry.
fn add64(a: vec2<u32>, b: u32) -> vec2<u32> {
  let lo = a.x + b;
  return vec2<u32>(lo, a.y + select(0u, 1u, lo < b));
}

// Uniform in [0, 1) from the top 24 bits of a word: exact in f32, never 1.0.
fn word_to_unit(w: u32) -> f32 {
  return f32(w >> 8u) * 5.9604644775390625e-8;
}

// Box-Muller on the word pairs (w.x, w.y) and (w.z, w.w): four standard normals.
// u1 is in (0, 1] so the log is finite; the angle is pi * (2 u2 - 1), in [-pi, pi).
fn words_to_normals(w: vec4<u32>) -> vec4<f32> {
  let u1 = (vec2<f32>(vec2<u32>(w.x, w.z) >> vec2<u32>(8u)) + 1.0) * 5.9604644775390625e-8;
  let u2 = vec2<f32>(vec2<u32>(w.y, w.w) >> vec2<u32>(8u)) * 5.9604644775390625e-8;
  let r = sqrt(-2.0 * log(u1));
  let theta = 3.14159265358979 * (2.0 * u2 - 1.0);
  return vec4<f32>(r.x * cos(theta.x), r.x * sin(theta.x), r.y * cos(theta.y), r.y * sin(theta.y));
}
