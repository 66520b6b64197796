// Stand-in for the amdgpu-arch.cpp LUMI serves at build time: answers the
// GPU architecture of a LUMI-G node (gfx90a) NUM_TARGETS times, without a GPU.
#include <iostream>

#ifndef NUM_TARGETS
#define NUM_TARGETS 1
#endif

int main() {
  for (int i = 0; i < NUM_TARGETS; ++i) std::cout << "gfx90a" << '\n';
  return 0;
}
