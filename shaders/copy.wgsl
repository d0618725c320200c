// The roofline reference: a plain vec4 copy over the same bytes as a dropout pass, with the same
// grid-stride loop as the dropout kernels (grid.wgsl; on lavapipe it is 35% faster than one vec4
// per invocation, so anything slower would flatter the ratios).

@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

fn group(j: u32) {
  dst4[j] = src4[j];
}

// No tail: the bench copies whole vec4 groups (word counts that are multiples of 4).
fn element(e: u32) {}
