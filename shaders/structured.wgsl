// Structured and variant dropout (docs/DESIGN.md section 2). One broadcast rule serves every op here:
// the mask has the input's shape with some dimensions set to 1, and element e of the call uses
// the contract word (or normal) of its mask index, the linear index in that reduced shape plus
// the call's offset. Element-wise dropout is the case noise shape == input shape.
// Needs philox.wgsl, elementwise.wgsl, data.wgsl and grid.wgsl. Each `// ==== kernel` section is
// one kernel; a record selects one.

// The input shape coalesced on the host (adjacent dimensions of the same kind merged, extents of
// 1 dropped), innermost dimension first. header.x = rank; dims[k] = (extent, mask stride), the
// stride 0 where the mask is broadcast (header.yzw unused).
struct Broadcast {
  header: vec4<u32>,
  dims: array<vec4<u32>, 8>,
}

@group(0) @binding(4) var<uniform> broadcast: Broadcast;

// The same table as pipeline constants, in a pipeline the host specializes for one table
// (ContextOptions.specializedShapes; only for rank >= 2). Divisions by constants compile to
// multiply-shifts; divisions by uniform values are per-lane scalar divisions on CPU adapters and
// multi-instruction sequences on GPUs (SpatialDropout 2D went 1.5x faster on lavapipe). The
// outermost extent is never divided by, so a new batch size reuses the pipeline.
override SPECIALIZED: bool = false;
override RANK: u32 = 0u;
override EXTENT0: u32 = 1u;
override EXTENT1: u32 = 1u;
override EXTENT2: u32 = 1u;
override EXTENT3: u32 = 1u;
override EXTENT4: u32 = 1u;
override EXTENT5: u32 = 1u;
override EXTENT6: u32 = 1u;
override STRIDE0: u32 = 0u;
override STRIDE1: u32 = 0u;
override STRIDE2: u32 = 0u;
override STRIDE3: u32 = 0u;
override STRIDE4: u32 = 0u;
override STRIDE5: u32 = 0u;
override STRIDE6: u32 = 0u;
override STRIDE7: u32 = 0u;

fn table_rank() -> u32 {
  if (SPECIALIZED) { return RANK; }
  return broadcast.header.x;
}

// (extent, mask stride) of coalesced dimension k, innermost first.
fn table_dim(k: u32) -> vec2<u32> {
  if (SPECIALIZED) {
    switch k {
      case 0u: { return vec2<u32>(EXTENT0, STRIDE0); }
      case 1u: { return vec2<u32>(EXTENT1, STRIDE1); }
      case 2u: { return vec2<u32>(EXTENT2, STRIDE2); }
      case 3u: { return vec2<u32>(EXTENT3, STRIDE3); }
      case 4u: { return vec2<u32>(EXTENT4, STRIDE4); }
      case 5u: { return vec2<u32>(EXTENT5, STRIDE5); }
      case 6u: { return vec2<u32>(EXTENT6, STRIDE6); }
      default: { return vec2<u32>(0u, STRIDE7); }
    }
  }
  return broadcast.dims[k].xy;
}

// Mask index of element e of the call (not of the chunk). e < the element count, so the
// outermost digit is what is left after the inner ones: no division by the outermost extent.
fn mask_index(e: u32) -> u32 {
  let rank = table_rank();
  if (rank == 0u) { return 0u; }
  var rest = e;
  var m = 0u;
  for (var k = 0u; k + 1u < rank; k++) {
    let d = table_dim(k);
    m += (rest % d.x) * d.y;
    rest /= d.x;
  }
  return m + rest * table_dim(rank - 1u).y;
}

// Mask indices of elements e0 .. e0+3. Where the four share a run of the innermost dimension
// (the common case) the indices step by its stride, and only e0 pays for the divisions.
fn mask_indices4(e0: u32) -> vec4<u32> {
  let m0 = mask_index(e0);
  let inner = table_dim(0u);
  if (table_rank() == 0u || e0 % inner.x + 3u < inner.x) {
    return vec4<u32>(m0) + vec4<u32>(0u, 1u, 2u, 3u) * inner.y;
  }
  return vec4<u32>(m0, mask_index(e0 + 1u), mask_index(e0 + 2u), mask_index(e0 + 3u));
}

// The mask table: where many elements share each mask element (SpatialDropout, DropPath), the
// host first writes the call's word of every mask element (for Gaussian dropout its normal, as f32
// bits) with the element-wise RNG kernel, so each element loads its word instead of running
// Philox for it again. Entry m is mask index m's word under the call's offset. Bound for every
// 'broadcast' kernel (a placeholder where TABLE is false, since the reads below are static uses).
override TABLE: bool = false;
@group(0) @binding(6) var<storage, read> mask_table: array<u32>;

fn table_words4(m: vec4<u32>) -> vec4<u32> {
  if (all(m == vec4<u32>(m.x))) { return vec4<u32>(mask_table[m.x]); }
  return vec4<u32>(mask_table[m.x], mask_table[m.y], mask_table[m.z], mask_table[m.w]);
}

fn mask_word(e: u32) -> u32 {
  if (TABLE) { return mask_table[mask_index(e)]; }
  return contract_word(add64(params.offset, mask_index(e)), params.stream, params.seed);
}

fn pick_u(w: vec4<u32>, lane: u32) -> u32 {
  return select(select(w.x, w.y, lane == 1u), select(w.z, w.w, lane == 3u), lane >= 2u);
}

fn pick_f(w: vec4<f32>, lane: u32) -> f32 {
  return select(select(w.x, w.y, lane == 1u), select(w.z, w.w, lane == 3u), lane >= 2u);
}

// The mask index is the element index (noise shape == input shape): the core's words4/normals4
// for this dispatch's elements 4j .. 4j+3 are then exactly the right ones.
fn elementwise_mask() -> bool {
  return table_rank() == 1u && table_dim(0u).y == 1u;
}

// Words of elements e0 .. e0+3 (e0 = body_first(j)): neighbours usually share a Philox group
// (element-wise masks) or a mask index (broadcast masks), so a group is generated again only
// where it changes.
fn mask_words4(j: u32) -> vec4<u32> {
  if (TABLE) { return table_words4(mask_indices4(body_first(j))); }
  if (elementwise_mask()) { return words4(j); }
  let m = mask_indices4(body_first(j));
  let s0 = mask_slot(m.x);
  let s1 = mask_slot(m.y);
  let s2 = mask_slot(m.z);
  let s3 = mask_slot(m.w);
  let w0 = group_words(s0.xy);
  var w1 = w0;
  if (any(s1.xy != s0.xy)) { w1 = group_words(s1.xy); }
  var w2 = w1;
  if (any(s2.xy != s1.xy)) { w2 = group_words(s2.xy); }
  var w3 = w2;
  if (any(s3.xy != s2.xy)) { w3 = group_words(s3.xy); }
  return vec4<u32>(pick_u(w0, s0.z), pick_u(w1, s1.z), pick_u(w2, s2.z), pick_u(w3, s3.z));
}

// threshold 0 (p = 0, or eval mode of the fused kernels) keeps everything with no RNG work.
fn keep_at1(e: u32) -> bool {
  if (params.threshold == 0u) { return true; }
  return mask_word(e) >= params.threshold;
}

fn keep_at4(j: u32) -> vec4<bool> {
  if (params.threshold == 0u) { return vec4<bool>(true); }
  return mask_words4(j) >= vec4<u32>(params.threshold);
}

// The contract normal of each element's mask index (Box-Muller on the word pair of its lane).
fn mask_normal(e: u32) -> f32 {
  if (TABLE) { return bitcast<f32>(mask_table[mask_index(e)]); }
  let s = mask_slot(mask_index(e));
  return words_to_normals(group_words(s.xy))[s.z];
}

fn mask_normals4(j: u32) -> vec4<f32> {
  if (TABLE) { return bitcast<vec4<f32>>(table_words4(mask_indices4(body_first(j)))); }
  if (elementwise_mask()) { return normals4(j); }
  let m = mask_indices4(body_first(j));
  let s0 = mask_slot(m.x);
  let s1 = mask_slot(m.y);
  let s2 = mask_slot(m.z);
  let s3 = mask_slot(m.w);
  let z0 = words_to_normals(group_words(s0.xy));
  var z1 = z0;
  if (any(s1.xy != s0.xy)) { z1 = words_to_normals(group_words(s1.xy)); }
  var z2 = z1;
  if (any(s2.xy != s1.xy)) { z2 = words_to_normals(group_words(s2.xy)); }
  var z3 = z2;
  if (any(s3.xy != s2.xy)) { z3 = words_to_normals(group_words(s3.xy)); }
  return vec4<f32>(pick_f(z0, s0.z), pick_f(z1, s1.z), pick_f(z2, s2.z), pick_f(z3, s3.z));
}

// Element index (in the call, not the chunk) of body group j's first element.
fn body_first(j: u32) -> u32 {
  return params.first + 4u * j;
}
// The residual of the fused kernels.
@group(0) @binding(3) var<storage, read> res4: array<S4>;
@group(0) @binding(3) var<storage, read> res1: array<S1>;

fn load_res1(e: u32) -> f32 {
  return cell_get(res1[cell_of(e)], e);
}

// ==== kernel masked
// Dropout with a broadcast mask: y = keep ? x * scale : 0 (scale 1 for DropPath without
// scale_by_keep). The backward pass is the same map applied to dy.

fn group(j: u32) {
  y4[j] = pack_s4(select(vec4<f32>(0.0), unpack_s4(x4[j]) * params.scale, keep_at4(j)));
}

fn element(e: u32) {
  store_y1(e, select(0.0, load_x1(e) * params.scale, keep_at1(params.first + e)));
}

// ==== kernel keep_mask
// The keep-mask itself, one u32 per element (1 = keep): the broadcast mask made visible.

@group(0) @binding(2) var<storage, read_write> keep4_out: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> keep1_out: array<u32>;

fn group(j: u32) {
  keep4_out[j] = select(vec4<u32>(0u), vec4<u32>(1u), keep_at4(j));
}

fn element(e: u32) {
  keep1_out[e] = select(0u, 1u, keep_at1(params.first + e));
}

// ==== kernel residual
// Fused residual add (DropPath): y = residual + (keep ? branch * scale : 0), one pass.

fn group(j: u32) {
  let branch = select(vec4<f32>(0.0), unpack_s4(x4[j]) * params.scale, keep_at4(j));
  y4[j] = pack_s4(unpack_s4(res4[j]) + branch);
}

fn element(e: u32) {
  let branch = select(0.0, load_x1(e) * params.scale, keep_at1(params.first + e));
  store_y1(e, load_res1(e) + branch);
}

// ==== kernel bias_residual
// Fused bias + dropout + residual (the transformer block pattern):
// y = residual + (keep ? (x + bias[col]) * scale : 0), col = element mod the bias length.

struct Op {
  columns: u32, // the bias length
}

// The bias, bound whole for every chunk and indexed by column.
@group(0) @binding(5) var<storage, read> bias: array<S1>;

fn bias_at(c: u32) -> f32 {
  return cell_get(bias[cell_of(c)], c);
}

// The bias length, compiled in where the host specialized the pipeline (ContextOptions.
// specializedShapes), so the column's `%` is by a constant; 0: read from params.op.columns.
override COLUMNS: u32 = 0u;
fn bias_columns() -> u32 {
  if (COLUMNS != 0u) { return COLUMNS; }
  return params.op.columns;
}

// One division for e0; the next three columns step by one and wrap (any column count >= 1):
// on lavapipe a u32 `%` is a scalar division per SIMD lane (this took the fused op from about
// 30% to about 40% of the copy kernel).
fn bias4(e0: u32) -> vec4<f32> {
  let cols = bias_columns();
  let c0 = e0 % cols;
  let c1 = select(c0 + 1u, 0u, c0 + 1u == cols);
  let c2 = select(c1 + 1u, 0u, c1 + 1u == cols);
  let c3 = select(c2 + 1u, 0u, c2 + 1u == cols);
  return vec4<f32>(bias_at(c0), bias_at(c1), bias_at(c2), bias_at(c3));
}

fn group(j: u32) {
  let v = (unpack_s4(x4[j]) + bias4(body_first(j))) * params.scale;
  y4[j] = pack_s4(unpack_s4(res4[j]) + select(vec4<f32>(0.0), v, keep_at4(j)));
}

fn element(e: u32) {
  let g = params.first + e;
  let v = (load_x1(e) + bias_at(g % bias_columns())) * params.scale;
  store_y1(e, load_res1(e) + select(0.0, v, keep_at1(g)));
}

// ==== kernel gaussian
// Gaussian dropout: y = x * (1 + sigma z), z the contract normal of the element's mask index.
// The backward pass is the same map applied to dy (same z).

struct Op {
  sigma: f32,
}

fn group(j: u32) {
  y4[j] = pack_s4(unpack_s4(x4[j]) * (1.0 + params.op.sigma * mask_normals4(j)));
}

fn element(e: u32) {
  store_y1(e, load_x1(e) * (1.0 + params.op.sigma * mask_normal(params.first + e)));
}

// ==== kernel alpha
// Alpha dropout (SELU): y = a * (keep ? x : alpha') + b.

struct Op {
  a: f32,
  b: f32,
  alpha_prime: f32, // alpha'
}

fn group(j: u32) {
  let v = select(vec4<f32>(params.op.alpha_prime), unpack_s4(x4[j]), keep_at4(j));
  y4[j] = pack_s4(params.op.a * v + params.op.b);
}

fn element(e: u32) {
  let v = select(params.op.alpha_prime, load_x1(e), keep_at1(params.first + e));
  store_y1(e, params.op.a * v + params.op.b);
}

// ==== kernel alpha_backward
// Backward of alpha dropout: dx = keep ? dy * a : 0.

struct Op {
  a: f32,
}

fn group(j: u32) {
  y4[j] = pack_s4(select(vec4<f32>(0.0), unpack_s4(x4[j]) * params.op.a, keep_at4(j)));
}

fn element(e: u32) {
  store_y1(e, select(0.0, load_x1(e) * params.op.a, keep_at1(params.first + e)));
}
