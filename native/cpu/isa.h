// Run-time ISA choice for the CPU backend. Every kernel family is compiled once per
// ISA into the one binary (see cpu/isa/); the best one the CPU supports is picked by
// CPUID, or forced with LLMK_CPU_ISA=avx512|avx2|scalar so tests cover every path.
#pragma once

namespace llmk::cpu {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// The ISA in use: LLMK_CPU_ISA or the best supported one at start-up; tests switch
// it with set_isa() to cover every path in one process.
Isa isa();
// Forces an ISA for subsequent ops (clamped to what the CPU supports); returns the
// ISA now in effect. Call only between ops (the cpu worker reads it per op).
Isa set_isa(Isa want);
const char* isa_name(Isa i);
// The best ISA this CPU supports, ignoring LLMK_CPU_ISA.
Isa best_supported_isa();

}  // namespace llmk::cpu
