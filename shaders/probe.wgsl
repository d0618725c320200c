// Binds one buffer and touches nothing: submitting it tells whether WebGPU still accepts the
// buffer (used only after a failed submit, to name the destroyed argument).

@group(0) @binding(0) var<storage, read> probed: array<u32>;

@compute @workgroup_size(1)
fn probe() {
  _ = &probed;
}
