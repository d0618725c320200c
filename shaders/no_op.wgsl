// The kernel-specific part of Params for a kernel whose record declares no uniforms (composeShader
// adds this file then): a WGSL struct needs a member.

struct Op {
  unused: u32,
}
