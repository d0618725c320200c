// The roofline reference: a plain vec4 copy over the same bytes as a dropout pass, with the same
// grid-stride shape as the dropout kernels (on lavapipe it is 35% faster than one vec4 per
// invocation, so anything slower would flatter the ratios).

@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { dst4[j] = src4[j]; }
  }
}
