// Benchmark-only variants of the f32/f16 dropout forward that each leave one stage out, so the
// suite can say whether the time goes to arithmetic (Philox) or to bytes (loads and stores).
// Composed after philox, elementwise, data, input and dropout (reuses x4, y4, in4, scale4, words4,
// keep4) and
// grid.wgsl: the same grid-stride loop as the forward they are compared with. The stages time
// whole vec4 groups (the bench's sizes are multiples of 4), so `element` is empty.

// ==== kernel stage_no_rng
// Bytes and the select/scale, no Philox: keep comes from a one-multiply hash of the index.

fn group(j: u32) {
  let h = (vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u)) * 0x9E3779B9u;
  y4[j] = scale4(x4[j], keep4(h));
}

fn element(e: u32) {}

// ==== kernel stage_rng_only
// Philox and the keep decision, no loads and (in practice) no stores: the store happens only if
// the four words XOR to a sentinel the host picks, so the compiler cannot drop it.

struct Op {
  sentinel: u32,
}

fn group(j: u32) {
  let w = words4(j);
  if ((w.x ^ w.y ^ w.z ^ w.w) == params.op.sentinel && any(keep4(w))) { y4[j] = S4(); }
}

fn element(e: u32) {}

// ==== kernel stage_rng_only_rebuilt_lo
// The Philox rounds exactly as the kernels computed them before commit 928011c: low words rebuilt
// from the 16-bit partial products instead of WGSL's native wrapping multiply. Bench-only, to time
// in the same run what the native low word buys (stage.rng_only_rebuilt_lo against stage.rng_only);
// the library's kernels use philox.wgsl. The sentinel as in stage_rng_only.

struct Op {
  sentinel: u32,
}

fn rebuilt_mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let t = a0 * b0;
  let u = a1 * b0 + (t >> 16u);
  let v = a0 * b1 + (u & 0xffffu);
  return vec2<u32>((v << 16u) | (t & 0xffffu), a1 * b1 + (u >> 16u) + (v >> 16u));
}

fn rebuilt_mulhilo_m0(a: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let t = a0 * M0_LO;
  let mid = a1 * M0_LO + a0 * M0_HI + (t >> 16u);
  return vec2<u32>((mid << 16u) | (t & 0xffffu), a1 * M0_HI + (mid >> 16u));
}

fn rebuilt_philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
  let r0 = rebuilt_mulhilo_m0(c.x);
  let r1 = rebuilt_mulhilo(PHILOX_M1, c.z);
  return vec4<u32>(r1.y ^ c.y ^ k.x, r1.x, r0.y ^ c.w ^ k.y, r0.x);
}

fn rebuilt_philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  let bump = vec2<u32>(PHILOX_W0, PHILOX_W1);
  var c = rebuilt_philox_round(counter, key);
  var k = key + bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  c = rebuilt_philox_round(c, k); k += bump;
  return rebuilt_philox_round(c, k);
}

fn group(j: u32) {
  let w = rebuilt_philox4x32_10(vec4<u32>(add64(params.group0, j), params.stream), params.seed);
  if ((w.x ^ w.y ^ w.z ^ w.w) == params.op.sentinel && any(keep4(w))) { y4[j] = S4(); }
}

fn element(e: u32) {}
