// The input of an out-of-place kernel: x (binding 1). Its in-place record takes inplace.wgsl instead.

fn in4(j: u32) -> S4 {
  return x4[j];
}

fn in1(e: u32) -> f32 {
  return load_x1(e);
}
