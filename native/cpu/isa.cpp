#include "cpu/isa.h"

#include <cpuid.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace llmk::cpu {
namespace {

bool os_saves_zmm() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xe6) == 0xe6;  // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM
}
bool os_saves_ymm() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0x6) == 0x6;
}

}  // namespace

Isa best_supported_isa() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Scalar;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave || !os_saves_ymm()) return Isa::Scalar;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::Scalar;
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  const bool avx512bf16 = a1 & (1u << 5);
  if (avx512f && avx512bw && avx512vl && vnni && avx512bf16 && fma && f16c && os_saves_zmm())
    return Isa::Avx512;
  if (avx2 && fma && f16c) return Isa::Avx2;
  return Isa::Scalar;
}

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::Avx512: return "avx512vnni";
    case Isa::Avx2: return "avx2";
    case Isa::Scalar: return "scalar";
  }
  return "?";
}

namespace {
Isa initial_isa() {
  return [] {
    const Isa best = best_supported_isa();
    const char* e = std::getenv("LLMK_CPU_ISA");
    if (!e || !*e) return best;
    Isa want;
    if (!std::strcmp(e, "avx512") || !std::strcmp(e, "avx512vnni")) want = Isa::Avx512;
    else if (!std::strcmp(e, "avx2")) want = Isa::Avx2;
    else if (!std::strcmp(e, "scalar")) want = Isa::Scalar;
    else {
      std::fprintf(stderr, "llm-kernels: LLMK_CPU_ISA='%s' is not one of avx512, avx2, scalar; using %s\n", e,
                   isa_name(best));
      return best;
    }
    if (int(want) > int(best)) {
      std::fprintf(stderr, "llm-kernels: LLMK_CPU_ISA=%s is not supported by this CPU; using %s\n", e,
                   isa_name(best));
      return best;
    }
    return want;
  }();
}
std::atomic<int> g_isa{-1};
}  // namespace

Isa isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    int expected = -1;
    g_isa.compare_exchange_strong(expected, int(initial_isa()));
    v = g_isa.load(std::memory_order_relaxed);
  }
  return Isa(v);
}

Isa set_isa(Isa want) {
  const Isa best = best_supported_isa();
  const Isa eff = int(want) > int(best) ? best : want;
  g_isa.store(int(eff), std::memory_order_relaxed);
  return eff;
}

}  // namespace llmk::cpu
