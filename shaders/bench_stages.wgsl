// Benchmark-only variants of the f32/f16 dropout forward that each leave one stage out, so the
// suite can say whether the time goes to arithmetic (Philox) or to bytes (loads and stores).
// Composed after philox, elementwise and dropout (reuses x4, y4, scale4, words4, keep4); the
// same grid-stride shape as the forward they are compared with.

// Bytes and the select/scale, no Philox: keep comes from a one-multiply hash of the index.
@compute @workgroup_size(WG)
fn stage_no_rng(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) {
      let h = (vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u)) * 0x9E3779B9u;
      y4[j] = scale4(x4[j], keep4(h));
    }
  }
}

// Philox and the keep decision, no loads and (in practice) no stores: the store happens only if
// the four words XOR to params.extra_u, a sentinel the host picks, so the compiler cannot drop it.
@compute @workgroup_size(WG)
fn stage_rng_only(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) {
      let w = words4(j);
      let keep = keep4(w);
      if ((w.x ^ w.y ^ w.z ^ w.w) == params.extra_u && any(keep)) { y4[j] = vec4<S>(); }
    }
  }
}
