// 2:4 sparsity bindings: prune, compress, decompress, matmul (format: common/sparse24.h).
#include "common/sparse24.h"
#include "napi/tensor_handle.h"

namespace llmk::napi {
namespace {

constexpr std::initializer_list<DType> kFloat = {DType::F32, DType::F16, DType::BF16};

void check_weight(const TensorHandle* w, const char* what) {
  expect_dtype(what, w, kFloat);
  LLMK_CHECK(w->tensor.rank() == 2, RangeError, "Expected ", what, " of rank 2 [N, K] but received shape ",
             shape_str(w->tensor.shape));
  LLMK_CHECK(w->tensor.dim(1) % 4 == 0, RangeError, "Expected ", what, " with K a multiple of 4 (2:4 groups) but K = ",
             w->tensor.dim(1));
}

// Checks (values [N, K/2], meta i32 [N, words(K)]) against K; returns N.
int64_t check_compressed(const TensorHandle* v, const TensorHandle* m, int64_t K) {
  expect_dtype("values", v, kFloat);
  expect_dtype("meta", m, {DType::I32});
  same_device("values", v, "meta", m);
  LLMK_CHECK(K % 4 == 0 && K >= 0, RangeError, "Expected K a non-negative multiple of 4 but received ", K);
  const int64_t N = v->tensor.rank() == 2 ? v->tensor.dim(0) : -1;
  LLMK_CHECK(N >= 0 && v->tensor.dim(1) == K / 2, RangeError, "Expected values of shape [N, ", K / 2,
             "] but received ", shape_str(v->tensor.shape));
  LLMK_CHECK(m->tensor.rank() == 2 && m->tensor.dim(0) == N && m->tensor.dim(1) == sparse24_meta_words(K), RangeError,
             "Expected meta of shape [", N, ", ", sparse24_meta_words(K), "] but received ", shape_str(m->tensor.shape));
  return N;
}

// sparse24Prune(w, norms | null)
Napi::Value Prune(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* w = unwrap(info[0], "w");
    TensorHandle* norms = unwrap_optional(info[1], "activationNorms");
    check_weight(w, "w");
    if (norms) {
      same_device("w", w, "activationNorms", norms);
      expect_dtype("activationNorms", norms, kFloat);
      LLMK_CHECK(norms->tensor.rank() == 1 && norms->tensor.dim(0) == w->tensor.dim(1), RangeError,
                 "Expected activationNorms of shape [", w->tensor.dim(1), "] but received ",
                 shape_str(norms->tensor.shape));
    }
    Device* dev = w->device;
    Tensor tw = w->tensor, out = make_tensor(dev, tw.shape, tw.dtype);
    Backend* be = dev->backend.get();
    if (norms) {
      Tensor tn = norms->tensor;
      enqueue(dev, [=] { be->sparse24_prune(tw, &tn, out); });
    } else {
      enqueue(dev, [=] { be->sparse24_prune(tw, nullptr, out); });
    }
    return TensorHandle::New(info.Env(), out, dev);
  });
}

// sparse24Compress(w) -> [values, meta]
Napi::Value Compress(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* w = unwrap(info[0], "w");
    check_weight(w, "w");
    Device* dev = w->device;
    const int64_t N = w->tensor.dim(0), K = w->tensor.dim(1);
    Tensor tw = w->tensor, values = make_tensor(dev, {N, K / 2}, tw.dtype),
           meta = make_tensor(dev, {N, sparse24_meta_words(K)}, DType::I32);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->sparse24_compress(tw, values, meta); });
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, TensorHandle::New(info.Env(), values, dev));
    out.Set(1u, TensorHandle::New(info.Env(), meta, dev));
    return out;
  });
}

// sparse24Decompress(values, meta, K)
Napi::Value Decompress(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* v = unwrap(info[0], "values");
    TensorHandle* m = unwrap(info[1], "meta");
    const double Kd = parse_number(info[2], "K");
    LLMK_CHECK(Kd >= 0 && Kd == double(int64_t(Kd)), RangeError, "Expected an integer K but received ", Kd);
    const int64_t K = int64_t(Kd), N = check_compressed(v, m, K);
    Device* dev = v->device;
    Tensor tv = v->tensor, tm = m->tensor, out = make_tensor(dev, {N, K}, tv.dtype);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->sparse24_decompress(tv, tm, out); });
    return TensorHandle::New(info.Env(), out, dev);
  });
}

// sparse24Matmul(x, values, meta, bias | null) -> [M, N]
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap(info[0], "x");
    TensorHandle* v = unwrap(info[1], "values");
    TensorHandle* m = unwrap(info[2], "meta");
    TensorHandle* b = unwrap_optional(info[3], "bias");
    expect_dtype("x", x, kFloat);
    LLMK_CHECK(x->tensor.rank() == 2, RangeError, "Expected x of rank 2 [M, K] but received shape ",
               shape_str(x->tensor.shape));
    same_device("x", x, "values", v);
    const int64_t M = x->tensor.dim(0), K = x->tensor.dim(1);
    LLMK_CHECK(v->tensor.rank() == 2 && v->tensor.dim(1) * 2 == K, RangeError, "Expected a 2:4 weight with K = ", K,
               " (values [N, ", K / 2, "]) to match x ", shape_str(x->tensor.shape), " but values are ",
               shape_str(v->tensor.shape));
    const int64_t N = check_compressed(v, m, K);
    LLMK_CHECK(v->tensor.dtype == x->tensor.dtype, TypeError, "Expected the weight's dtype ",
               dtype_name(v->tensor.dtype), " to match x's ", dtype_name(x->tensor.dtype));
    if (b) {
      same_device("x", x, "bias", b);
      LLMK_CHECK(b->tensor.dtype == x->tensor.dtype && b->tensor.rank() == 1 && b->tensor.dim(0) == N, RangeError,
                 "Expected bias of shape [", N, "] and dtype ", dtype_name(x->tensor.dtype), " but received ",
                 shape_str(b->tensor.shape), " ", dtype_name(b->tensor.dtype));
    }
    Device* dev = x->device;
    Tensor tx = x->tensor, tv = v->tensor, tm = m->tensor, y = make_tensor(dev, {M, N}, tx.dtype);
    Backend* be = dev->backend.get();
    if (b) {
      Tensor tb = b->tensor;
      enqueue(dev, [=] { be->sparse24_matmul(tx, tv, tm, &tb, y); });
    } else {
      enqueue(dev, [=] { be->sparse24_matmul(tx, tv, tm, nullptr, y); });
    }
    return TensorHandle::New(info.Env(), y, dev);
  });
}

}  // namespace

void init_sparse24_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("sparse24Prune", Napi::Function::New(env, Prune));
  exports.Set("sparse24Compress", Napi::Function::New(env, Compress));
  exports.Set("sparse24Decompress", Napi::Function::New(env, Decompress));
  exports.Set("sparse24Matmul", Napi::Function::New(env, Matmul));
}

}  // namespace llmk::napi
