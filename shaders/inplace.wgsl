// The input of an in-place kernel: y itself (binding 2, read_write), since WebGPU forbids binding
// one buffer twice where one binding is writable. Replaces input.wgsl in the kernel's record.

fn in4(j: u32) -> S4 {
  return y4[j];
}

fn in1(e: u32) -> f32 {
  return load_y1(e);
}
