// The two launch loops of every vec4 kernel, written once: the kernel's section defines
// `fn group(j: u32)` (elements 4j .. 4j+3 of this dispatch) and `fn element(e: u32)` (one element
// of the count % 4 tail), and its record names `body` and `tail` as its entry points.
// Needs elementwise.wgsl (linear_id, grid_size, body_groups, tail_cells).

// Grid-stride body: each invocation takes GROUPS_PER_INVOCATION vec4 groups, one grid apart, so
// consecutive invocations touch consecutive vec4s in every pass of the loop.
@compute @workgroup_size(WG)
fn body(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let k = linear_id(gid, nwg);
  for (var q = 0u; q < GROUPS_PER_INVOCATION; q++) {
    let j = k + q * grid_size(nwg);
    if (j < body_groups()) { group(j); }
  }
}

// Tail: each invocation owns one storage cell of the last count % 4 elements (see tail_cells).
@compute @workgroup_size(WG)
fn tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = tail_cells(linear_id(gid, nwg));
  for (var e = r.x; e < r.y; e++) { element(e); }
}
