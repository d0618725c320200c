// MC-Dropout statistics accumulated on the GPU, one sample at a time in sample order, so the
// sequential schedule (one sample per dispatch) and the batched one (many samples per dispatch)
// do the same f32 operations in the same order and agree bit for bit.
// Welford's update (mean, M2) per output element; for classification the statistics are over
// softmax probabilities, plus the running mean of each sample's entropy.

override WG: u32 = 256u;

struct Mc {
  rows: u32,    // rows of one sample's output
  cols: u32,    // outputs (classes) per row
  first: u32,   // samples accumulated before this dispatch
  samples: u32, // samples in this dispatch: blocks of rows x cols in `outputs`
  total: u32,   // samples in the whole run (finalize)
}

@group(0) @binding(0) var<uniform> mc: Mc;
@group(0) @binding(1) var<storage, read> outputs: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> m2: array<f32>;          // M2, then the variance
@group(0) @binding(4) var<storage, read_write> mean_entropy: array<f32>; // per row: mean of H[p_t]
@group(0) @binding(5) var<storage, read_write> row_stats: array<f32>;   // per row: H[mean p], E[H[p_t]], BALD

fn invocation(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Welford step for the k-th value (k from 1): the first value sets mean = y, M2 = 0 exactly,
// so the state buffers need no clearing and identical samples leave M2 exactly 0.
fn welford(e: u32, y: f32, k: u32) {
  if (k == 1u) {
    mean[e] = y;
    m2[e] = 0.0;
    return;
  }
  let mu = mean[e];
  let delta = y - mu;
  let next = mu + delta / f32(k);
  mean[e] = next;
  m2[e] += delta * (y - next);
}

@compute @workgroup_size(WG)
fn accumulate_regression(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = invocation(gid, nwg);
  let elements = mc.rows * mc.cols;
  if (e >= elements) { return; }
  for (var s = 0u; s < mc.samples; s++) {
    welford(e, outputs[s * elements + e], mc.first + s + 1u);
  }
}

// One invocation per row: softmax of each sample's logits, Welford on the probabilities, and
// the running mean of the sample's entropy H[p_t] = -sum p log p (log-softmax keeps it finite).
@compute @workgroup_size(WG)
fn accumulate_classification(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = invocation(gid, nwg);
  if (r >= mc.rows) { return; }
  let n = mc.cols;
  for (var s = 0u; s < mc.samples; s++) {
    let base = s * mc.rows * n + r * n;
    var top = outputs[base];
    for (var o = 1u; o < n; o++) { top = max(top, outputs[base + o]); }
    var total = 0.0;
    for (var o = 0u; o < n; o++) { total += exp(outputs[base + o] - top); }
    let lse = log(total);
    let k = mc.first + s + 1u;
    var entropy = 0.0;
    for (var o = 0u; o < n; o++) {
      let log_p = outputs[base + o] - top - lse;
      let p = exp(log_p);
      entropy -= p * log_p;
      welford(r * n + o, p, k);
    }
    if (k == 1u) {
      mean_entropy[r] = entropy;
    } else {
      mean_entropy[r] += (entropy - mean_entropy[r]) / f32(k);
    }
  }
}

// Variance = M2 / T (the spread of the T samples themselves, as in Gal & Ghahramani), in place.
@compute @workgroup_size(WG)
fn finalize_regression(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = invocation(gid, nwg);
  if (e >= mc.rows * mc.cols) { return; }
  m2[e] = m2[e] / f32(mc.total);
}

// Per row: predictive entropy H[mean p], expected entropy E[H[p_t]] and the mutual information
// (BALD) H[mean p] - E[H[p_t]], which is >= 0 by Jensen; rounding can push it a few ulps below,
// so it is clamped at 0. Also the per-class variance of the probabilities, in place.
@compute @workgroup_size(WG)
fn finalize_classification(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = invocation(gid, nwg);
  if (r >= mc.rows) { return; }
  var predictive = 0.0;
  for (var o = 0u; o < mc.cols; o++) {
    let e = r * mc.cols + o;
    let p = mean[e];
    if (p > 0.0) { predictive -= p * log(p); }
    m2[e] = m2[e] / f32(mc.total);
  }
  let expected = mean_entropy[r];
  row_stats[3u * r] = predictive;
  row_stats[3u * r + 1u] = expected;
  row_stats[3u * r + 2u] = max(predictive - expected, 0.0);
}
