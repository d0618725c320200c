// Test oracle: Random123's own Philox4x32-10 (librandom123-dev), compiled by tests/philox.test.ts.
// stdin: one "c0 c1 c2 c3 k0 k1" line per block (hex u32 words);
// stdout: one "r0 r1 r2 r3" line per block (hex), philox4x32_R(10, counter, key).
#include <Random123/philox.h>
#include <cstdio>

int main() {
  unsigned c0, c1, c2, c3, k0, k1;
  while (std::scanf("%x %x %x %x %x %x", &c0, &c1, &c2, &c3, &k0, &k1) == 6) {
    r123::Philox4x32_R<10>::ctr_type ctr = {{c0, c1, c2, c3}};
    r123::Philox4x32_R<10>::key_type key = {{k0, k1}};
    r123::Philox4x32_R<10>::ctr_type out = r123::Philox4x32_R<10>()(ctr, key);
    std::printf("%08x %08x %08x %08x\n", out.v[0], out.v[1], out.v[2], out.v[3]);
  }
  return 0;
}
