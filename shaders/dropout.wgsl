// Inverted dropout: y = x * keep / (1 - p). The backward pass is the same map applied to dy with
// the forward's (seed, stream, offset, p): the mask is regenerated, never stored.
// Needs elementwise.wgsl, data.wgsl and input.wgsl (or inplace.wgsl); the vec4 kernels also
// grid.wgsl. Each `// ==== kernel` section is one kernel; a record selects one.

// Packed keep-mask (bit b of word k = element 32k + b), read by `masked` and written by
// `forward_packed`.
@group(0) @binding(3) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> mask_out: array<u32>;

fn scale4(v: S4, keep: vec4<bool>) -> S4 {
  return pack_s4(select(vec4<f32>(0.0), unpack_s4(v) * params.scale, keep));
}

fn scale1(v: f32, keep: bool) -> f32 {
  return select(0.0, v * params.scale, keep);
}

// The forward of group j (y = in * keep * scale); returns the keep decisions.
fn forward4(j: u32) -> vec4<bool> {
  let keep = keep4(words4(j));
  y4[j] = scale4(in4(j), keep);
  return keep;
}

fn forward1(e: u32) -> bool {
  let keep = word1(e) >= params.threshold;
  store_y1(e, scale1(in1(e), keep));
  return keep;
}

// ==== kernel forward

fn group(j: u32) {
  forward4(j);
}

fn element(e: u32) {
  forward1(e);
}

// ==== kernel forward_packed
// Forward that also writes the packed keep-mask: each group's words decide both the outputs and the
// bits (one Philox call per 4 elements, not two). MASK_WORDS_IN_WORKGROUP: one invocation per vec4
// group, mask words assembled in workgroup memory; else one invocation per mask word (8 groups).

@compute @workgroup_size(WG)
fn forward_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let groups = body_groups();
  if (MASK_WORDS_IN_WORKGROUP) {
    let j = linear_id(gid, nwg);
    var nibble = 0u;
    if (j < groups) { nibble = keep_nibble(forward4(j)); }
    let word = gather_mask_word(li, nibble);
    if ((li & 7u) == 0u && j < groups) { mask_out[j >> 3u] = word; }
  } else {
    let k = linear_id(gid, nwg);
    if (8u * k < groups) {
      var bits = 0u;
      for (var q = 0u; q < 8u; q++) {
        let j = 8u * k + q;
        if (j < groups) { bits |= keep_nibble(forward4(j)) << (4u * q); }
      }
      mask_out[k] = bits;
    }
  }
}

// The count % 4 tail of forward_packed, in one invocation so its bits land in one word: it owns
// that word when the tail starts one, else ORs into the word the body dispatch wrote before it.
@compute @workgroup_size(WG)
fn forward_packed_tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (linear_id(gid, nwg) != 0u) { return; }
  let first = tail_element(0u);
  var bits = 0u;
  for (var e = first; e < params.count; e++) { bits |= select(0u, 1u, forward1(e)) << (e & 31u); }
  let k = first >> 5u;
  if ((first & 31u) == 0u) {
    mask_out[k] = bits;
  } else {
    mask_out[k] |= bits;
  }
}

// ==== kernel masked
// The forward (and backward) with the keep decisions read from a packed keep-mask.

fn group(j: u32) {
  let nibble = (mask[j >> 3u] >> ((j & 7u) * 4u)) & 0xfu;
  y4[j] = scale4(in4(j), (vec4<u32>(nibble) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u));
}

fn element(e: u32) {
  store_y1(e, scale1(in1(e), ((mask[e >> 5u] >> (e & 31u)) & 1u) != 0u));
}

// ==== kernel identity
// p = 0 (or eval mode into a separate output): a copy, bit for bit (no conversion).

fn group(j: u32) {
  y4[j] = x4[j];
}

fn element(e: u32) {
  let c = cell_of(e);
  y1[c] = cell_take(y1[c], x1[c], e);
}

// ==== kernel zeros
// p = 1: no RNG work.

fn group(j: u32) {
  y4[j] = S4();
}

fn element(e: u32) {
  store_y1(e, 0.0);
}
