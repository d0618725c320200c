// The bias gradient of the fused bias + dropout + residual op, in two stages with one invocation
// per output; dx is bound whole at binding 1. Needs elementwise.wgsl and data.wgsl.

struct Op {
  cols: u32,      // the bias length
  rows: u32,      // rows of dx
  per_block: u32, // rows each stage-1 sum covers
}

// Per-block partial sums (f32) between the two stages.
@group(0) @binding(2) var<storage, read_write> partial_out: array<f32>;
@group(0) @binding(1) var<storage, read> partial_in: array<f32>;

// Stage 1: partial[i] = sum of dx[r * cols + c] over the rows r of block b, with
// i = b * cols + c. Stage 2 adds the blocks of each column.
@compute @workgroup_size(WG)
fn bias_grad_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linear_id(gid, nwg);
  if (t >= params.count) { return; }
  let i = params.first + t;
  let cols = params.op.cols;
  let per_block = params.op.per_block;
  let c = i % cols;
  let r0 = (i / cols) * per_block;
  let r1 = min(params.op.rows, r0 + per_block);
  var sum = 0.0;
  for (var r = r0; r < r1; r++) { sum += load_x1(r * cols + c); }
  partial_out[t] = sum;
}

@compute @workgroup_size(WG)
fn bias_grad_final(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // One invocation per output cell (CELL columns; the chunk starts on a whole cell), so no two
  // write one word of a packed f16 bias gradient.
  let t0 = linear_id(gid, nwg);
  if (t0 >= params.count || t0 % CELL != 0u) { return; }
  let cols = params.op.cols;
  let blocks = (params.op.rows + params.op.per_block - 1u) / params.op.per_block;
  for (var t = t0; t < min(t0 + CELL, params.count); t++) {
    let c = params.first + t;
    var sum = 0.0;
    for (var b = 0u; b < blocks; b++) { sum += partial_in[b * cols + c]; }
    store_y1(t, sum);
  }
}
