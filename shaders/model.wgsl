// A minimal MLP kit: dense layers on row-major f32 matrices, losses, and optimiser steps.
// All parameters live in one flat buffer (layer l: W_l as inputs x outputs row-major, then b_l),
// so one optimiser dispatch updates every layer. Needs philox.wgsl (the mask contract, for dropout_blocks).
// One invocation per output element: the sizes this kit serves (widths <= ~64) are small, and a
// fixed summation order makes every output independent of how many rows share the dispatch.

override WG: u32 = 256u;

struct Dense {
  rows: u32,    // m: rows in the batch
  inputs: u32,  // k
  outputs: u32, // n
  flags: u32,   // bit 0: ReLU (forward: apply it; backward: mask by activation > 0)
  w_off: u32,   // element offset of W (k x n) in the parameter buffer
  b_off: u32,   // element offset of b (n)
}

struct Adam {
  count: u32,   // parameters
  sgd: u32,     // 1: plain SGD step, 0: Adam
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  c1: f32,      // 1 / (1 - beta1^t), bias corrections computed on the host in f64
  c2: f32,      // 1 / (1 - beta2^t)
}

struct Blocks {
  seed: vec2<u32>,   // the Philox key (lo, hi)
  stream: vec2<u32>, // stream of block 0; block t uses stream + t
  offset: vec2<u32>, // mask index of element 0 of every block
  count: u32,        // elements in all blocks
  per_block: u32,    // elements in one block
  threshold: u32,    // keep iff word >= threshold
  scale: f32,        // 1 / (1 - p)
}

// Bindings shared by several entry points; two variables share a binding only where no entry
// point uses both.
@group(0) @binding(0) var<uniform> dense: Dense;
@group(0) @binding(0) var<uniform> adam: Adam;
@group(0) @binding(0) var<uniform> blocks: Blocks;
@group(0) @binding(1) var<storage, read> lhs: array<f32>;         // x, dy, predictions or logits
@group(0) @binding(2) var<storage, read> theta: array<f32>;       // all parameters
@group(0) @binding(2) var<storage, read_write> theta_rw: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<storage, read> rhs: array<f32>;         // dy, targets, activations or gradients
@group(0) @binding(5) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> moment1: array<f32>;
@group(0) @binding(6) var<storage, read_write> moment2: array<f32>;

fn invocation(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// y[r, o] = act(b[o] + sum_j x[r, j] W[j, o]), summed in ascending j.
@compute @workgroup_size(WG)
fn linear_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = invocation(gid, nwg);
  if (e >= dense.rows * dense.outputs) { return; }
  let r = e / dense.outputs;
  let o = e % dense.outputs;
  var acc = theta[dense.b_off + o];
  for (var j = 0u; j < dense.inputs; j++) {
    acc += lhs[r * dense.inputs + j] * theta[dense.w_off + j * dense.outputs + o];
  }
  if ((dense.flags & 1u) != 0u) { acc = max(acc, 0.0); }
  result[e] = acc;
}

// dx[r, j] = sum_o dy[r, o] W[j, o], times ReLU'(previous layer) = (activation[r, j] > 0) when
// flag bit 0 is set. The activation may be the post-dropout one: a dropped unit has 0 gradient
// after the dropout backward anyway, and a kept one is > 0 exactly when its ReLU input was.
@compute @workgroup_size(WG)
fn linear_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = invocation(gid, nwg);
  if (e >= dense.rows * dense.inputs) { return; }
  let r = e / dense.inputs;
  let j = e % dense.inputs;
  var acc = 0.0;
  for (var o = 0u; o < dense.outputs; o++) {
    acc += lhs[r * dense.outputs + o] * theta[dense.w_off + j * dense.outputs + o];
  }
  if ((dense.flags & 1u) != 0u && rhs[e] <= 0.0) { acc = 0.0; }
  result[e] = acc;
}

// dW[j, o] = sum_r x[r, j] dy[r, o] and db[o] = sum_r dy[r, o], written into the gradient buffer
// at the layer's offsets (invocations k*n .. k*n+n-1 do the bias).
@compute @workgroup_size(WG)
fn linear_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = invocation(gid, nwg);
  let weights = dense.inputs * dense.outputs;
  if (e >= weights + dense.outputs) { return; }
  var acc = 0.0;
  if (e < weights) {
    let j = e / dense.outputs;
    let o = e % dense.outputs;
    for (var r = 0u; r < dense.rows; r++) { acc += lhs[r * dense.inputs + j] * rhs[r * dense.outputs + o]; }
    result[dense.w_off + e] = acc;
  } else {
    let o = e - weights;
    for (var r = 0u; r < dense.rows; r++) { acc += rhs[r * dense.outputs + o]; }
    result[dense.b_off + o] = acc;
  }
}

// Mean squared error over all m x n outputs. One invocation per row: row_loss[r] = sum_o (y - t)^2 / n
// (the batch loss is the mean of row_loss), dy = 2 (y - t) / (m n).
@compute @workgroup_size(WG)
fn mse_loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = invocation(gid, nwg);
  if (r >= dense.rows) { return; }
  let n = dense.outputs;
  let grad_scale = 2.0 / (f32(dense.rows) * f32(n));
  var sum = 0.0;
  for (var o = 0u; o < n; o++) {
    let d = lhs[r * n + o] - rhs[r * n + o];
    sum += d * d;
    result[r * n + o] = grad_scale * d;
  }
  row_loss[r] = sum / f32(n);
}

// Softmax cross-entropy against target distributions t (one-hot for hard labels), per row:
// row_loss[r] = -sum_o t_o log softmax(z)_o, dz = (softmax(z) sum_o t_o - t) / m.
// log-softmax is z - max - log sum exp(z - max), finite for any finite logits.
@compute @workgroup_size(WG)
fn xent_loss(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = invocation(gid, nwg);
  if (r >= dense.rows) { return; }
  let n = dense.outputs;
  let base = r * n;
  var top = lhs[base];
  for (var o = 1u; o < n; o++) { top = max(top, lhs[base + o]); }
  var total = 0.0;
  var mass = 0.0;
  for (var o = 0u; o < n; o++) {
    total += exp(lhs[base + o] - top);
    mass += rhs[base + o];
  }
  let lse = log(total);
  var loss = 0.0;
  let inv_rows = 1.0 / f32(dense.rows);
  for (var o = 0u; o < n; o++) {
    let log_p = lhs[base + o] - top - lse;
    loss -= rhs[base + o] * log_p;
    result[base + o] = (exp(log_p) * mass - rhs[base + o]) * inv_rows;
  }
  row_loss[r] = loss;
}

// One Adam (Kingma & Ba, 2015) or SGD step over every parameter; gradients in rhs.
@compute @workgroup_size(WG)
fn optimizer_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = invocation(gid, nwg);
  if (i >= adam.count) { return; }
  let g = rhs[i];
  if (adam.sgd != 0u) {
    theta_rw[i] -= adam.lr * g;
    return;
  }
  let m = adam.beta1 * moment1[i] + (1.0 - adam.beta1) * g;
  let v = adam.beta2 * moment2[i] + (1.0 - adam.beta2) * g * g;
  moment1[i] = m;
  moment2[i] = v;
  theta_rw[i] -= adam.lr * (m * adam.c1) / (sqrt(v * adam.c2) + adam.eps);
}

// In-place inverted dropout over consecutive blocks of rows that each are one MC sample: element
// i of block t gets the mask contract's word for (seed, stream + t, offset + i), the same word the
// library's dropout op draws for that sample alone. This is what lets the batched MC schedule
// (T samples folded into the batch) reproduce the sequential one bit for bit.
@compute @workgroup_size(WG)
fn dropout_blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = invocation(gid, nwg);
  if (e >= blocks.count) { return; }
  let t = e / blocks.per_block;
  let stream = add64(blocks.stream, t);
  let word = contract_word(add64(blocks.offset, e % blocks.per_block), stream, blocks.seed);
  result[e] = select(0.0, result[e] * blocks.scale, word >= blocks.threshold);
}
