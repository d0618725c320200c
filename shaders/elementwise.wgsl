// Shared by every element-wise kernel: the per-dispatch parameters and the mapping from an
// element of this dispatch to its random word under the mask contract (docs/DESIGN.md section 1).

override WG: u32 = 256u;
// True when the dispatch starts mid-group (offset + first not divisible by 4). A pipeline
// constant, so the common aligned case compiles without the straddling branch.
override MISALIGNED: bool = false;

struct Params {
  seed: vec2<u32>,    // seed (lo, hi): the Philox key
  stream: vec2<u32>,  // stream (lo, hi): counter words 2 and 3
  group0: vec2<u32>,  // Philox counter (lo, hi) of the group holding this dispatch's element 0
  offset: vec2<u32>,  // the call's mask offset (lo, hi), for kernels that map elements to mask indices
  lane0: u32,         // lane of element 0 in that group: (offset + first) mod 4
  count: u32,         // elements in this dispatch
  threshold: u32,     // keep iff word >= threshold
  scale: f32,         // 1 / (1 - p) for kept elements
  first: u32,         // index of this dispatch's element 0 within the call (chunks start past 0)
  // The fields above are PARAMS_HEADER of src/kernels/record.ts, in its order. The kernel's own
  // fields: its record's `uniforms`, a struct its WGSL declares (shaders/no_op.wgsl where it has
  // none), at the next 16-byte boundary, where the host's packer writes them.
  @align(16) op: Op,
}

@group(0) @binding(0) var<uniform> params: Params;

// Launch shape, chosen per adapter by the host (ContextOptions.tuning); the words an element gets
// never depend on it.
// Vec4 groups each invocation of a grid-stride body kernel handles. Consecutive invocations touch
// consecutive vec4s in every pass of the loop, as coalescing GPUs want. On CPU adapters fewer,
// longer invocations amortise per-invocation cost (lavapipe's f32 forward went from 0.51-0.58 to
// 0.66 of the copy kernel with 4); on an NVIDIA H200 one group per invocation was fastest.
override GROUPS_PER_INVOCATION: u32 = 4u;
// How the forward that also writes the packed 1-bit mask builds a 32-bit mask word (8 vec4 groups):
// true, one group per invocation and the 8 neighbours' nibbles combined in workgroup memory
// (neighbouring invocations read neighbouring vec4s: coalesced); false, one invocation walks the
// word's 8 groups (fine on a CPU, but on a GPU neighbouring invocations then read addresses 128
// bytes apart: on an NVIDIA H200 the forward + mask took 173 us at 2^24 so, 48 us in workgroup
// memory).
override MASK_WORDS_IN_WORKGROUP: bool = false;

// Invocations in the whole dispatch: the stride of the grid-stride loops.
fn grid_size(nwg: vec3<u32>) -> u32 {
  return nwg.x * nwg.y * WG;
}

// Linear invocation index; dispatches of more than 65,535 workgroups fold into y.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// The words of Philox group g under this call's seed and stream.
fn group_words(g: vec2<u32>) -> vec4<u32> {
  return contract_words(g, params.stream, params.seed);
}

// Philox group (lo, hi) and lane of this call's mask index m (the call's offset added).
fn mask_slot(m: u32) -> vec3<u32> {
  return contract_slot(add64(params.offset, m));
}

// Lanes lane0..3 of `a` followed by lanes 0..lane0-1 of `b`.
fn shift_lanes_u(a: vec4<u32>, b: vec4<u32>, lane0: u32) -> vec4<u32> {
  switch lane0 {
    case 0u: { return a; }
    case 1u: { return vec4<u32>(a.yzw, b.x); }
    case 2u: { return vec4<u32>(a.zw, b.xy); }
    default: { return vec4<u32>(a.w, b.xyz); }
  }
}

fn shift_lanes_f(a: vec4<f32>, b: vec4<f32>, lane0: u32) -> vec4<f32> {
  switch lane0 {
    case 0u: { return a; }
    case 1u: { return vec4<f32>(a.yzw, b.x); }
    case 2u: { return vec4<f32>(a.zw, b.xy); }
    default: { return vec4<f32>(a.w, b.xyz); }
  }
}

// Words for elements 4j .. 4j+3 of this dispatch, whose mask indices are the element indices:
// group0 is contract_slot's group of the dispatch's element 0, so group j follows it. When the
// dispatch starts mid-group (an offset not divisible by 4) they straddle two Philox groups.
fn words4(j: u32) -> vec4<u32> {
  let g = add64(params.group0, j);
  let a = group_words(g);
  if (!MISALIGNED) {
    return a;
  }
  return shift_lanes_u(a, group_words(add64(g, 1u)), params.lane0);
}

// The word for element e of this dispatch (used by the scalar tails).
fn word1(e: u32) -> u32 {
  return contract_word(add64(params.offset, params.first + e), params.stream, params.seed);
}

fn normals4(j: u32) -> vec4<f32> {
  let g = add64(params.group0, j);
  let a = words_to_normals(group_words(g));
  if (!MISALIGNED) {
    return a;
  }
  return shift_lanes_f(a, words_to_normals(group_words(add64(g, 1u))), params.lane0);
}

fn normal1(e: u32) -> f32 {
  let s = mask_slot(params.first + e);
  return words_to_normals(group_words(s.xy))[s.z];
}

fn keep4(w: vec4<u32>) -> vec4<bool> {
  return w >= vec4<u32>(params.threshold);
}

// Number of whole vec4 groups in this dispatch; the remaining count % 4 go to a tail entry point.
fn body_groups() -> u32 {
  return params.count >> 2u;
}

// Element index handled by tail invocation t.
fn tail_element(t: u32) -> u32 {
  return (params.count & ~3u) + t;
}

// The keep bits of one vec4 group, lane l at bit l.
fn keep_nibble(keep: vec4<bool>) -> u32 {
  return dot(select(vec4<u32>(0u), vec4<u32>(1u, 2u, 4u, 8u), keep), vec4<u32>(1u));
}

// Nibbles of the 8 invocations li & ~7 .. li | 7 (8 consecutive vec4 groups, since WG is a
// multiple of 8 when MASK_WORDS_IN_WORKGROUP is set) combined into one mask word, returned to the
// invocation with li % 8 == 0 (the others get 0). Every invocation of the workgroup must call it.
var<workgroup> mask_nibbles: array<u32, WG>;
fn gather_mask_word(li: u32, nibble: u32) -> u32 {
  mask_nibbles[li] = nibble << (4u * (li & 7u));
  workgroupBarrier();
  var word = 0u;
  if ((li & 7u) == 0u) {
    for (var q = 0u; q < 8u; q++) { word |= mask_nibbles[li + q]; }
  }
  return word;
}

// Elements [x, y) of the tail that tail invocation t handles: the CELL elements of one storage
// cell (one element natively, one u32 word of two halves on the packed f16 path), clipped to the
// count, so no two invocations write the same word. The tail starts word-aligned (count & ~3).
fn tail_cells(t: u32) -> vec2<u32> {
  let first = tail_element(t * CELL);
  return vec2<u32>(first, min(first + CELL, params.count));
}
