// Bindings of dense matmul and the small decoder ops. Arguments are validated again
// here (the TS layer validated first) so a direct native call cannot crash anything.
#include "napi/tensor_handle.h"

namespace llmk::napi {
namespace {

constexpr std::initializer_list<DType> kFloat = {DType::F32, DType::F16, DType::BF16};

void expect_rank(const char* what, const TensorHandle* t, int rank) {
  LLMK_CHECK(t->tensor.rank() == rank, RangeError, "Expected ", what, " of rank ", rank, " but received shape ",
             shape_str(t->tensor.shape));
}
void same_dtype(const char* a, const TensorHandle* ta, const char* b, const TensorHandle* tb) {
  LLMK_CHECK(ta->tensor.dtype == tb->tensor.dtype, TypeError, "Expected ", b, " to have the dtype of ", a, " (",
             dtype_name(ta->tensor.dtype), ") but received ", dtype_name(tb->tensor.dtype));
}

// matmul(x[M,K], w[N,K], bias[N] | null) -> [M,N]
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap(info[0], "x");
    TensorHandle* w = unwrap(info[1], "w");
    TensorHandle* b = unwrap_optional(info[2], "bias");
    expect_rank("x", x, 2);
    expect_rank("w", w, 2);
    expect_dtype("x", x, kFloat);
    same_dtype("x", x, "w", w);
    same_device("x", x, "w", w);
    const int64_t M = x->tensor.dim(0), K = x->tensor.dim(1), N = w->tensor.dim(0);
    LLMK_CHECK(w->tensor.dim(1) == K, RangeError, "Expected w of shape [N, ", K, "] to match x ",
               shape_str(x->tensor.shape), " but received ", shape_str(w->tensor.shape));
    if (b) {
      same_device("x", x, "bias", b);
      same_dtype("x", x, "bias", b);
      LLMK_CHECK(b->tensor.rank() == 1 && b->tensor.dim(0) == N, RangeError, "Expected bias of shape [", N,
                 "] but received ", shape_str(b->tensor.shape));
    }
    Device* dev = x->device;
    Tensor tx = x->tensor, tw = w->tensor, y = make_tensor(dev, {M, N}, tx.dtype);
    Backend* be = dev->backend.get();
    if (b) {
      Tensor tb = b->tensor;
      enqueue(dev, [=] { be->matmul(tx, tw, &tb, y); });
    } else {
      enqueue(dev, [=] { be->matmul(tx, tw, nullptr, y); });
    }
    return TensorHandle::New(info.Env(), y, dev);
  });
}

// binary(op: 'add' | 'mul', a, b) -> shape of a; b same shape or broadcast over a's leading dims
Napi::Value Binary(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    LLMK_CHECK(info[0].IsString(), TypeError, "Expected 'add' or 'mul' for op");
    const std::string name = info[0].As<Napi::String>();
    LLMK_CHECK(name == "add" || name == "mul", TypeError, "Expected 'add' or 'mul' for op but received '", name, "'");
    TensorHandle* a = unwrap(info[1], "a");
    TensorHandle* b = unwrap(info[2], "b");
    expect_dtype("a", a, kFloat);
    same_dtype("a", a, "b", b);
    same_device("a", a, "b", b);
    const auto& as = a->tensor.shape;
    const auto& bs = b->tensor.shape;
    bool ok = bs.size() <= as.size();
    for (size_t i = 0; ok && i < bs.size(); ++i) ok = bs[bs.size() - 1 - i] == as[as.size() - 1 - i];
    LLMK_CHECK(ok && (b->tensor.numel() > 0 || a->tensor.numel() == 0), RangeError, "Expected b's shape ",
               shape_str(bs), " to equal a's shape ", shape_str(as), " or a trailing part of it");
    Device* dev = a->device;
    Tensor ta = a->tensor, tb = b->tensor, y = make_tensor(dev, as, ta.dtype);
    const BinaryOp op = name == "add" ? BinaryOp::Add : BinaryOp::Mul;
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->binary(op, ta, tb, y); });
    return TensorHandle::New(info.Env(), y, dev);
  });
}

// rmsNorm(x[..., D], w[D], eps)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap(info[0], "x");
    TensorHandle* w = unwrap(info[1], "weight");
    const double eps = parse_number(info[2], "eps");
    expect_dtype("x", x, kFloat);
    same_dtype("x", x, "weight", w);
    same_device("x", x, "weight", w);
    LLMK_CHECK(x->tensor.rank() >= 1, RangeError, "Expected x of rank >= 1");
    const int64_t D = x->tensor.dim(-1);
    LLMK_CHECK(w->tensor.rank() == 1 && w->tensor.dim(0) == D && D > 0, RangeError, "Expected weight of shape [",
               D, "] but received ", shape_str(w->tensor.shape));
    LLMK_CHECK(eps >= 0 && eps < 1e30, RangeError, "Expected a finite non-negative eps but received ", eps);
    Device* dev = x->device;
    Tensor tx = x->tensor, tw = w->tensor, y = make_tensor(dev, tx.shape, tx.dtype);
    Backend* be = dev->backend.get();
    const float e = float(eps);
    enqueue(dev, [=] { be->rms_norm(tx, tw, e, y); });
    return TensorHandle::New(info.Env(), y, dev);
  });
}

Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* g = unwrap(info[0], "gate");
    TensorHandle* u = unwrap(info[1], "up");
    expect_dtype("gate", g, kFloat);
    same_dtype("gate", g, "up", u);
    same_device("gate", g, "up", u);
    LLMK_CHECK(g->tensor.shape == u->tensor.shape, RangeError, "Expected up of shape ", shape_str(g->tensor.shape),
               " but received ", shape_str(u->tensor.shape));
    Device* dev = g->device;
    Tensor tg = g->tensor, tu = u->tensor, y = make_tensor(dev, tg.shape, tg.dtype);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->silu_mul(tg, tu, y); });
    return TensorHandle::New(info.Env(), y, dev);
  });
}

// embedding(table[V, D], ids i32[...]) -> [..., D]
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* t = unwrap(info[0], "table");
    TensorHandle* ids = unwrap(info[1], "ids");
    expect_dtype("table", t, kFloat);
    expect_dtype("ids", ids, {DType::I32});
    same_device("table", t, "ids", ids);
    expect_rank("table", t, 2);
    auto shape = ids->tensor.shape;
    shape.push_back(t->tensor.dim(1));
    Device* dev = t->device;
    Tensor tt = t->tensor, ti = ids->tensor, y = make_tensor(dev, shape, tt.dtype);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->embedding(tt, ti, y); });
    return TensorHandle::New(info.Env(), y, dev);
  });
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap(info[0], "x");
    expect_dtype("x", x, kFloat);
    LLMK_CHECK(x->tensor.rank() >= 1, RangeError, "Expected x of rank >= 1");
    Device* dev = x->device;
    Tensor tx = x->tensor, y = make_tensor(dev, tx.shape, tx.dtype);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->softmax(tx, y); });
    return TensorHandle::New(info.Env(), y, dev);
  });
}

// argmax over the last dim -> i32[...leading]
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* x = unwrap(info[0], "x");
    expect_dtype("x", x, kFloat);
    LLMK_CHECK(x->tensor.rank() >= 1 && x->tensor.dim(-1) > 0, RangeError,
               "Expected x of rank >= 1 with a non-empty last dim but received ", shape_str(x->tensor.shape));
    auto shape = x->tensor.shape;
    shape.pop_back();
    Device* dev = x->device;
    Tensor tx = x->tensor, y = make_tensor(dev, shape, DType::I32);
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->argmax(tx, y); });
    return TensorHandle::New(info.Env(), y, dev);
  });
}

}  // namespace

void init_basic_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul));
  exports.Set("embedding", Napi::Function::New(env, Embedding));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("argmax", Napi::Function::New(env, Argmax));
}

}  // namespace llmk::napi
