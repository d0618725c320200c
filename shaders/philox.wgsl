// Philox4x32-10 (Salmon et al., SC'11), bit-exact with Random123's philox4x32_R(10, ctr, key).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// The high word of an exact 32x32 -> 64-bit product. WGSL has no 64-bit integers (and no mulhi),
// so it is assembled from 16-bit partial products in a carry chain where no partial sum can
// overflow: t < 2^32, u <= (2^16-1)^2 + 2^16 - 1 < 2^32, v likewise. Every carry is kept. The low
// word needs no such care: WGSL's u32 `a * b` wraps, i.e. it is exactly the product mod 2^32, and
// one native multiply is cheaper than rebuilding it from the partial products (on an NVIDIA H200
// the Philox-only stage went from 43.4 to 38.1 us at 2^24 with this change alone).
fn mulhi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let t = a0 * b0;
  let u = a1 * b0 + (t >> 16u);
  let v = a0 * b1 + (u & 0xffffu);
  return a1 * b1 + (u >> 16u) + (v >> 16u);
}

// The high word of a * M0, two operations shorter than mulhi: M0's low half is below 2^13, so the
// two cross products plus the carry out of the low product stay below 2^32 (at most 4,054,003,118,
// for a = 0xffffffff) and are summed without a carry chain of their own. M1's low half is not
// small enough (its sum reaches 5.8e9), so M1 keeps the general mulhi.
const M0_LO: u32 = PHILOX_M0 & 0xffffu;
const M0_HI: u32 = PHILOX_M0 >> 16u;
fn mulhi_m0(a: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let mid = a1 * M0_LO + a0 * M0_HI + ((a0 * M0_LO) >> 16u);
  return a1 * M0_HI + (mid >> 16u);
}

// One round: (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)).
fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
  return vec4<u32>(mulhi(PHILOX_M1, c.z) ^ c.y ^ k.x, PHILOX_M1 * c.z, mulhi_m0(c.x) ^ c.w ^ k.y, PHILOX_M0 * c.x);
}

// Ten rounds, unrolled; the key is bumped between rounds (nine bumps), as in Random123.
fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  let bump = vec2<u32>(PHILOX_W0, PHILOX_W1);
  var c = philox_round(counter, key);
  var k = key + bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  c = philox_round(c, k); k += bump;
  return philox_round(c, k);
}

// 64-bit (lo, hi) + 32-bit, with carry.
fn add64(a: vec2<u32>, b: u32) -> vec2<u32> {
  let lo = a.x + b;
  return vec2<u32>(lo, a.y + select(0u, 1u, lo < b));
}

// ---- The mask contract (docs/DESIGN.md section 1): mask index i, a 64-bit count with the call's
// offset included (taken mod 2^64), takes lane i mod 4 of the Philox block at counter
// (i / 4, stream) under the key (seed). Every kernel maps its elements to random words through
// these three functions.

// Philox group (lo, hi) = i / 4 and lane i mod 4 of mask index i (lo, hi).
fn contract_slot(i: vec2<u32>) -> vec3<u32> {
  return vec3<u32>((i.x >> 2u) | (i.y << 30u), i.y >> 2u, i.x & 3u);
}

// The four words of Philox group g (lanes 0..3). Groups number the 2^64 indices 4 at a time, so g
// counts mod 2^62: a vec4 body that steps g past 2^62 - 1 (an offset near 2^64) wraps to group 0
// exactly as contract_slot does for one index.
fn contract_words(g: vec2<u32>, stream: vec2<u32>, key: vec2<u32>) -> vec4<u32> {
  return philox4x32_10(vec4<u32>(g.x, g.y & 0x3fffffffu, stream), key);
}

// The word of mask index i.
fn contract_word(i: vec2<u32>, stream: vec2<u32>, key: vec2<u32>) -> u32 {
  let s = contract_slot(i);
  return contract_words(s.xy, stream, key)[s.z];
}

// Uniform in [0, 1) from the top 24 bits of a word: exact in f32, never 1.0.
fn word_to_unit(w: u32) -> f32 {
  return f32(w >> 8u) * 5.9604644775390625e-8;
}

// ln(u) for u in (0, 1]. Near 1 the f32 log loses relative precision, and with it the small
// Box-Muller radii; there the series of ln(1 - x) in x = 1 - u (exact in f32) is used instead
// (truncation error below x^4 / 5 relative, < 1e-9 for x < 2^-7).
fn log_unit(u: vec2<f32>) -> vec2<f32> {
  let x = 1.0 - u;
  let series = -x * (1.0 + x * (0.5 + x * (0.33333334 + x * 0.25)));
  return select(log(u), series, x < vec2<f32>(0.0078125));
}

// Box-Muller on the word pairs (w.x, w.y) and (w.z, w.w): four standard normals.
// u1 is in (0, 1] so the log is finite; the angle is pi * (2 u2 - 1), in [-pi, pi).
fn words_to_normals(w: vec4<u32>) -> vec4<f32> {
  let u1 = (vec2<f32>(vec2<u32>(w.x, w.z) >> vec2<u32>(8u)) + 1.0) * 5.9604644775390625e-8;
  let u2 = vec2<f32>(vec2<u32>(w.y, w.w) >> vec2<u32>(8u)) * 5.9604644775390625e-8;
  let r = sqrt(-2.0 * log_unit(u1));
  let theta = 3.14159265358979 * (2.0 * u2 - 1.0);
  return vec4<f32>(r.x * cos(theta.x), r.x * sin(theta.x), r.y * cos(theta.y), r.y * sin(theta.y));
}
