// Inverted dropout: y = x * keep / (1 - p). The backward pass is the same map applied to dy with
// the forward's (seed, stream, offset, p): the mask is regenerated, never stored.
// The data go through the storage interface of the prelude (native_storage.wgsl: f32 or f16
// as vec4<S>; f16_packed.wgsl: f16 as u32 words): arithmetic is in f32, one rounding.

@group(0) @binding(1) var<storage, read> x4: array<S4>;
@group(0) @binding(2) var<storage, read_write> y4: array<S4>;
@group(0) @binding(1) var<storage, read> x1: array<S1>;
@group(0) @binding(2) var<storage, read_write> y1: array<S1>;
// Packed keep-mask (bit b of word k = element 32k + b), read by the *_masked entry points and
// written by forward_packed.
@group(0) @binding(3) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> mask_out: array<u32>;

fn scale4(v: S4, keep: vec4<bool>) -> S4 {
  return pack_s4(select(vec4<f32>(0.0), unpack_s4(v) * params.scale, keep));
}

fn scale1(v: f32, keep: bool) -> f32 {
  return select(0.0, v * params.scale, keep);
}

// Element e of x (or of y, for in-place kernels), and element e of y set to v: a read-modify-
// write of its cell, so the invocation doing it must own the cell (see tail_cells).
fn load_x1(e: u32) -> f32 {
  return cell_get(x1[cell_of(e)], e);
}

fn load_y1(e: u32) -> f32 {
  return cell_get(y1[cell_of(e)], e);
}

fn store_y1(e: u32, v: f32) {
  let c = cell_of(e);
  y1[c] = cell_set(y1[c], e, v);
}

fn mask_keep4(j: u32) -> vec4<bool> {
  let nibble = (mask[j >> 3u] >> ((j & 7u) * 4u)) & 0xfu;
  return (vec4<u32>(nibble) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
}

fn mask_keep1(e: u32) -> bool {
  return ((mask[e >> 5u] >> (e & 31u)) & 1u) != 0u;
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { y4[j] = scale4(x4[j], keep4(words4(j))); }
  }
}

@compute @workgroup_size(WG)
fn forward_tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) { store_y1(e, scale1(load_x1(e), word1(e) >= params.threshold)); }
}

// Forward that also writes the packed keep-mask: each group's words decide both the outputs and the
// bits (one Philox call per 4 elements, not two). MASK_WORDS_IN_WORKGROUP: one invocation per vec4
// group, mask words assembled in workgroup memory; else one invocation per mask word (8 groups).
@compute @workgroup_size(WG)
fn forward_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let groups = body_groups();
  if (MASK_WORDS_IN_WORKGROUP) {
    let j = linear_id(gid, nwg);
    var nibble = 0u;
    if (j < groups) {
      let keep = keep4(words4(j));
      y4[j] = scale4(x4[j], keep);
      nibble = keep_nibble(keep);
    }
    let word = gather_mask_word(li, nibble);
    if ((li & 7u) == 0u && j < groups) { mask_out[j >> 3u] = word; }
  } else {
    let k = linear_id(gid, nwg);
    if (8u * k < groups) {
      var bits = 0u;
      for (var q = 0u; q < 8u; q++) {
        let j = 8u * k + q;
        if (j < groups) {
          let keep = keep4(words4(j));
          y4[j] = scale4(x4[j], keep);
          bits |= keep_nibble(keep) << (4u * q);
        }
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
  for (var e = first; e < params.count; e++) {
    let keep = word1(e) >= params.threshold;
    store_y1(e, scale1(load_x1(e), keep));
    bits |= select(0u, 1u, keep) << (e & 31u);
  }
  let k = first >> 5u;
  if ((first & 31u) == 0u) {
    mask_out[k] = bits;
  } else {
    mask_out[k] |= bits;
  }
}

// In place: one read_write binding, since WebGPU forbids aliasing a writable binding.
@compute @workgroup_size(WG)
fn forward_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { y4[j] = scale4(y4[j], keep4(words4(j))); }
  }
}

@compute @workgroup_size(WG)
fn forward_tail_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) { store_y1(e, scale1(load_y1(e), word1(e) >= params.threshold)); }
}

@compute @workgroup_size(WG)
fn masked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { y4[j] = scale4(x4[j], mask_keep4(j)); }
  }
}

@compute @workgroup_size(WG)
fn masked_tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) { store_y1(e, scale1(load_x1(e), mask_keep1(e))); }
}

@compute @workgroup_size(WG)
fn masked_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { y4[j] = scale4(y4[j], mask_keep4(j)); }
  }
}

@compute @workgroup_size(WG)
fn masked_tail_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) { store_y1(e, scale1(load_y1(e), mask_keep1(e))); }
}

// p = 0 (or eval mode into a separate output) and p = 1: no RNG work.
@compute @workgroup_size(WG)
fn identity(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { y4[j] = x4[j]; }
  }
}

@compute @workgroup_size(WG)
fn identity_tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) {
    let c = cell_of(e);
    y1[c] = cell_take(y1[c], x1[c], e);
  }
}

@compute @workgroup_size(WG)
fn zeros(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { y4[j] = S4(); }
  }
}

@compute @workgroup_size(WG)
fn zeros_tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) { store_y1(e, 0.0); }
}
