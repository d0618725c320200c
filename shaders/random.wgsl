// Raw contract words, uniforms, normals and Bernoulli keep-masks. Needs elementwise.wgsl; the vec4
// kernels also grid.wgsl. Each `// ==== kernel` section is one kernel; a record selects one.

@group(0) @binding(2) var<storage, read_write> out_u4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out_u1: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_f4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out_f1: array<f32>;

// ==== kernel words

fn group(j: u32) {
  out_u4[j] = words4(j);
}

fn element(e: u32) {
  out_u1[e] = word1(e);
}

// ==== kernel uniform01

fn group(j: u32) {
  let w = words4(j);
  out_f4[j] = vec4<f32>(word_to_unit(w.x), word_to_unit(w.y), word_to_unit(w.z), word_to_unit(w.w));
}

fn element(e: u32) {
  out_f1[e] = word_to_unit(word1(e));
}

// ==== kernel normal

fn group(j: u32) {
  out_f4[j] = normals4(j);
}

fn element(e: u32) {
  out_f1[e] = normal1(e);
}

// ==== kernel bernoulli
// 1 = keep, 0 = drop.

fn group(j: u32) {
  out_u4[j] = select(vec4<u32>(0u), vec4<u32>(1u), keep4(words4(j)));
}

fn element(e: u32) {
  out_u1[e] = select(0u, 1u, word1(e) >= params.threshold);
}

// ==== kernel bernoulli_packed
// Packed keep-mask: bit b of word k is element 32k + b of this dispatch; bits past count are 0.
// One invocation per mask word. (Assembling words in workgroup memory, as forward_packed does on
// GPUs, was slower here on an NVIDIA H200: 46.0 against 39.8 us at 2^24. With no data to read,
// there is nothing to coalesce, and the barrier costs.)

@compute @workgroup_size(WG)
fn bernoulli_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  let groups = (params.count + 3u) / 4u;
  if (8u * k >= groups) { return; }
  var bits = 0u;
  for (var q = 0u; q < 8u; q++) {
    let j = 8u * k + q;
    if (j < groups) {
      // Lanes past count are cleared: min(count - 4j, 4) valid lanes.
      bits |= (keep_nibble(keep4(words4(j))) & (0xfu >> (4u - min(params.count - 4u * j, 4u)))) << (4u * q);
    }
  }
  out_u1[k] = bits;
}

// ==== kernel fill
// p = 0 or p = 1: constant masks with no RNG work. threshold 0 keeps everything, anything else nothing.

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = linear_id(gid, nwg);
  if (e < params.count) { out_u1[e] = select(0u, 1u, params.threshold == 0u); }
}

@compute @workgroup_size(WG)
fn fill_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  if (k >= (params.count + 31u) / 32u) { return; }
  let valid = min(params.count - 32u * k, 32u);
  let bits = select(0xffffffffu >> (32u - valid), 0xffffffffu, valid == 32u);
  out_u1[k] = select(0u, bits, params.threshold == 0u);
}
