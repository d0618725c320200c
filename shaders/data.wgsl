// The data of the kernels that read x and write y, one element of the call's dtype each: through
// the storage interface of the prelude (native_storage.wgsl: f32 or f16 as vec4<S>;
// f16_packed.wgsl: f16 as u32 words), so arithmetic is in f32 with one rounding. S4 holds elements
// 4j .. 4j+3, S1 the cell of one (or, packed, two) elements.

@group(0) @binding(1) var<storage, read> x4: array<S4>;
@group(0) @binding(2) var<storage, read_write> y4: array<S4>;
@group(0) @binding(1) var<storage, read> x1: array<S1>;
@group(0) @binding(2) var<storage, read_write> y1: array<S1>;

// Element e of x or y, and element e of y set to v: a read-modify-write of its cell, so the
// invocation doing it must own the cell (see tail_cells).
fn load_x1(e: u32) -> f32 {
  return cell_get(x1[cell_of(e)], e);
}

fn load_y1(e: u32) -> f32 {
  return cell_get(y1[cell_of(e)], e);
}

fn store_y1(e: u32, v: f32) {
  let c = cell_of(e);
  y1[c] = cell_set(y1[c], e, v);
}
