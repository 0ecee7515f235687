// Bindings of LLM.int8(): int8QuantizeWeight, int8QuantizeRows, int8Matmul. Arguments
// are validated again here (the TS layer validated first) so a direct call cannot crash.
#include <cmath>

#include "napi/tensor_handle.h"

namespace llmk::napi {
namespace {

// int32 accumulation: |Σ_k (xq + 128)·q| <= 255·127·K must stay below 2^31.
constexpr int64_t kMaxK = 65536;

double parse_threshold(const Napi::Value& v) {
  LLMK_CHECK(v.IsNumber(), TypeError, "Expected a number for opts.threshold");
  const double t = v.As<Napi::Number>().DoubleValue();
  LLMK_CHECK(std::isfinite(t) && t >= 0 && t <= 3.0e38, RangeError,
             "Expected a finite non-negative opts.threshold but received ", t);
  return t;
}

TensorHandle* unwrap_activations(const Napi::Value& v) {
  TensorHandle* x = unwrap(v, "x");
  expect_dtype("x", x, {DType::F32, DType::F16});
  LLMK_CHECK(x->tensor.rank() == 2, RangeError, "Expected x of rank 2 [M, K] but received shape ",
             shape_str(x->tensor.shape));
  const int64_t K = x->tensor.dim(1);
  LLMK_CHECK(K >= 1 && K <= kMaxK, RangeError, "Expected x with K in [1, ", kMaxK, "] but received shape ",
             shape_str(x->tensor.shape));
  return x;
}

// int8QuantizeWeight(w[N,K] f32|f16|bf16) -> [q i8 [N,K], scale f32 [N], rowsum i32 [N]]
Napi::Value QuantizeWeight(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* w = unwrap(info[0], "w");
    expect_dtype("w", w, {DType::F32, DType::F16, DType::BF16});
    LLMK_CHECK(w->tensor.rank() == 2, RangeError, "Expected w of rank 2 [N, K] but received shape ",
               shape_str(w->tensor.shape));
    const int64_t N = w->tensor.dim(0), K = w->tensor.dim(1);
    LLMK_CHECK(K >= 1 && K <= kMaxK, RangeError, "Expected w with K in [1, ", kMaxK, "] but received shape ",
               shape_str(w->tensor.shape));
    Device* dev = w->device;
    Tensor tw = w->tensor;
    Int8Weight out{make_tensor(dev, {N, K}, DType::I8), make_tensor(dev, {N}, DType::F32),
                   make_tensor(dev, {N}, DType::I32)};
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->int8_quantize_weight(tw, out); });
    Napi::Array result = Napi::Array::New(info.Env(), 3);
    result.Set(0u, TensorHandle::New(info.Env(), out.q, dev));
    result.Set(1u, TensorHandle::New(info.Env(), out.scale, dev));
    result.Set(2u, TensorHandle::New(info.Env(), out.rowsum, dev));
    return result;
  });
}

// int8QuantizeRows(x[M,K], threshold) -> [q i8 [M,K], scale f32 [M], outlierMask i32 [K]]
Napi::Value QuantizeRows(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap_activations(info[0]);
    const float threshold = float(parse_threshold(info[1]));
    const int64_t M = x->tensor.dim(0), K = x->tensor.dim(1);
    Device* dev = x->device;
    Tensor tx = x->tensor, q = make_tensor(dev, {M, K}, DType::I8), scale = make_tensor(dev, {M}, DType::F32),
           mask = make_tensor(dev, {K}, DType::I32);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->int8_quantize_rows(tx, threshold, q, scale, mask); });
    Napi::Array result = Napi::Array::New(info.Env(), 3);
    result.Set(0u, TensorHandle::New(info.Env(), q, dev));
    result.Set(1u, TensorHandle::New(info.Env(), scale, dev));
    result.Set(2u, TensorHandle::New(info.Env(), mask, dev));
    return result;
  });
}

// int8Matmul(x[M,K], q i8 [N,K], scale f32 [N], rowsum i32 [N], bias[N] | null, threshold) -> [M,N]
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap_activations(info[0]);
    TensorHandle* q = unwrap(info[1], "w.q");
    TensorHandle* scale = unwrap(info[2], "w.scale");
    TensorHandle* rowsum = unwrap(info[3], "w.rowsum");
    TensorHandle* b = unwrap_optional(info[4], "bias");
    const float threshold = float(parse_threshold(info[5]));
    const int64_t M = x->tensor.dim(0), K = x->tensor.dim(1);
    expect_dtype("w.q", q, {DType::I8});
    expect_dtype("w.scale", scale, {DType::F32});
    expect_dtype("w.rowsum", rowsum, {DType::I32});
    LLMK_CHECK(q->tensor.rank() == 2 && q->tensor.dim(1) == K, RangeError, "Expected w of shape [N, ", K,
               "] to match x ", shape_str(x->tensor.shape), " but received ", shape_str(q->tensor.shape));
    const int64_t N = q->tensor.dim(0);
    for (auto [name, h] : {std::pair{"w.scale", scale}, std::pair{"w.rowsum", rowsum}})
      LLMK_CHECK(h->tensor.rank() == 1 && h->tensor.dim(0) == N, RangeError, "Expected ", name, " of shape [", N,
                 "] but received ", shape_str(h->tensor.shape));
    for (auto [name, h] : {std::pair{"w", q}, std::pair{"w.scale", scale}, std::pair{"w.rowsum", rowsum}})
      same_device("x", x, name, h);
    if (b) {
      same_device("x", x, "bias", b);
      LLMK_CHECK(b->tensor.dtype == x->tensor.dtype, TypeError, "Expected bias to have the dtype of x (",
                 dtype_name(x->tensor.dtype), ") but received ", dtype_name(b->tensor.dtype));
      LLMK_CHECK(b->tensor.rank() == 1 && b->tensor.dim(0) == N, RangeError, "Expected bias of shape [", N,
                 "] but received ", shape_str(b->tensor.shape));
    }
    Device* dev = x->device;
    Tensor tx = x->tensor, y = make_tensor(dev, {M, N}, tx.dtype);
    Int8Weight w{q->tensor, scale->tensor, rowsum->tensor};
    Backend* be = dev->backend.get();
    if (b) {
      Tensor tb = b->tensor;
      enqueue(dev, [=] { be->int8_matmul(tx, w, threshold, &tb, y); });
    } else {
      enqueue(dev, [=] { be->int8_matmul(tx, w, threshold, nullptr, y); });
    }
    return TensorHandle::New(info.Env(), y, dev);
  });
}

}  // namespace

void init_int8_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("int8QuantizeWeight", Napi::Function::New(env, QuantizeWeight));
  exports.Set("int8QuantizeRows", Napi::Function::New(env, QuantizeRows));
  exports.Set("int8Matmul", Napi::Function::New(env, Matmul));
}

}  // namespace llmk::napi
