// The elementwise ops of the cpu device: each call runs the copy of
// cpu/isa/elementwise.cpp compiled for the ISA in use.
#include "cpu/isa.h"
#include "cpu/ops.h"

namespace llmk::cpu {

#define LLMK_DECLARE_EW(NS)                                                              \
  namespace NS {                                                                         \
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y);           \
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y);           \
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& y);                  \
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& y);               \
  void softmax(const Tensor& x, const Tensor& y);                                        \
  void argmax(const Tensor& x, const Tensor& y);                                         \
  void cast(const Tensor& x, const Tensor& y);                                           \
  void fill(const Tensor& y, double value);                                              \
  }
LLMK_DECLARE_EW(isa_scalar)
LLMK_DECLARE_EW(isa_avx2)
LLMK_DECLARE_EW(isa_avx512)
#undef LLMK_DECLARE_EW

#define LLMK_DISPATCH(fn, ...)                                   \
  switch (isa()) {                                               \
    case Isa::Avx512: return isa_avx512::fn(__VA_ARGS__);        \
    case Isa::Avx2: return isa_avx2::fn(__VA_ARGS__);            \
    default: return isa_scalar::fn(__VA_ARGS__);                 \
  }

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y) { LLMK_DISPATCH(binary, op, a, b, y) }
void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) { LLMK_DISPATCH(rms_norm, x, w, eps, y) }
void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& y) { LLMK_DISPATCH(silu_mul, gate, up, y) }
void embedding(const Tensor& table, const Tensor& ids, const Tensor& y) { LLMK_DISPATCH(embedding, table, ids, y) }
void softmax(const Tensor& x, const Tensor& y) { LLMK_DISPATCH(softmax, x, y) }
void argmax(const Tensor& x, const Tensor& y) { LLMK_DISPATCH(argmax, x, y) }
void cast(const Tensor& x, const Tensor& y) { LLMK_DISPATCH(cast, x, y) }
void fill(const Tensor& y, double value) { LLMK_DISPATCH(fill, y, value) }

#undef LLMK_DISPATCH

}  // namespace llmk::cpu
