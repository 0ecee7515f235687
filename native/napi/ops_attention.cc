// attention / pagedAttention bindings (and the cpu bench baseline). Arguments are
// validated again here (the TS layer validated first) so a direct native call cannot
// crash anything; offsets, page indices and lengths live on the device and are
// checked by the backend.
#include <cmath>

#include "cpu/ops.h"
#include "napi/tensor_handle.h"

namespace llmk::napi {
namespace {

struct AttnOpts {
  AttentionParams p;
  bool return_lse = false;
};

// An optional integer option in [0, hi] (0 when absent).
int int_option(const Napi::Object& obj, const char* name, double hi, const char* expected) {
  Napi::Value v = obj.Get(name);
  if (v.IsUndefined()) return 0;
  LLMK_CHECK(v.IsNumber(), TypeError, "Expected a number for opts.", name);
  const double d = v.As<Napi::Number>().DoubleValue();
  LLMK_CHECK(d == std::floor(d) && d >= 0 && d <= hi, RangeError, "Expected ", expected, " but received ", d);
  return int(d);
}

AttnOpts parse_opts(const Napi::Value& v, int64_t D) {
  AttnOpts o;
  o.p.scale = float(1.0 / std::sqrt(double(D)));
  if (v.IsUndefined() || v.IsNull()) return o;
  LLMK_CHECK(v.IsObject(), TypeError, "Expected an options object for opts");
  Napi::Object obj = v.As<Napi::Object>();
  Napi::Value s = obj.Get("scale");
  if (!s.IsUndefined()) {
    LLMK_CHECK(s.IsNumber(), TypeError, "Expected a number for opts.scale");
    const double d = s.As<Napi::Number>().DoubleValue();
    LLMK_CHECK(std::isfinite(d) && std::isfinite(float(d)), RangeError,
               "Expected a finite number for opts.scale but received ", d);
    o.p.scale = float(d);
  }
  o.p.causal = obj.Get("causal").ToBoolean();
  o.return_lse = obj.Get("returnLse").ToBoolean();
  o.p.num_splits = int_option(obj, "numSplits", 65536, "an integer opts.numSplits in [0, 65536]");
  o.p.window = int_option(obj, "window", 2147483647, "a non-negative integer opts.window (0 = no window)");
  return o;
}

void check_head_dims(int64_t Hq, int64_t Hkv, int64_t D) {
  LLMK_CHECK(D % 8 == 0 && D >= 8 && D <= 256, RangeError,
             "Expected a head dim D that is a multiple of 8 in [8, 256] but received ", D);
  LLMK_CHECK(Hkv >= 1 && Hq >= 1 && Hq % Hkv == 0, RangeError, "Expected the q head count (", Hq,
             ") to be a multiple of the kv head count (", Hkv, ")");
}

void check_same(const char* what, const TensorHandle* t, const TensorHandle* q) {
  same_device("q", q, what, t);
  LLMK_CHECK(t->tensor.dtype == q->tensor.dtype, TypeError, "Expected ", what, " to have the dtype of q (",
             dtype_name(q->tensor.dtype), ") but received ", dtype_name(t->tensor.dtype));
}

void check_offsets(const char* what, const TensorHandle* t, const TensorHandle* q, int64_t n) {
  same_device("q", q, what, t);
  expect_dtype(what, t, {DType::I32});
  LLMK_CHECK(t->tensor.rank() == 1 && t->tensor.dim(0) == n, RangeError, "Expected ", what, " of shape [", n,
             "] but received ", shape_str(t->tensor.shape));
}

Napi::Value result(Napi::Env env, Device* dev, const Tensor& out, const Tensor* lse) {
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, TensorHandle::New(env, out, dev));
  r.Set(1u, lse ? Napi::Value(TensorHandle::New(env, *lse, dev)) : env.Null());
  return r;
}

// attention(q, k, v, cuQ | null, cuK | null, opts) -> [out, lse | null]
Napi::Value Attention(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* q = unwrap(info[0], "q");
    TensorHandle* k = unwrap(info[1], "k");
    TensorHandle* v = unwrap(info[2], "v");
    TensorHandle* cq = unwrap_optional(info[3], "cuSeqlensQ");
    TensorHandle* ck = unwrap_optional(info[4], "cuSeqlensK");
    LLMK_CHECK((cq == nullptr) == (ck == nullptr), TypeError,
               "Expected cuSeqlensQ and cuSeqlensK both given or both null");
    const bool varlen = cq != nullptr;
    const int rank = varlen ? 3 : 4;
    const char* layout = varlen ? "[T, H, D]" : "[B, S, H, D]";
    expect_dtype("q", q, {DType::F32, DType::F16, DType::BF16});
    for (auto [name, h] : {std::pair{"q", q}, std::pair{"k", k}, std::pair{"v", v}})
      LLMK_CHECK(h->tensor.rank() == rank, RangeError, "Expected ", name, " of rank ", rank, " ", layout,
                 " but received shape ", shape_str(h->tensor.shape));
    check_same("k", k, q);
    check_same("v", v, q);
    const Tensor &tq = q->tensor, &tk = k->tensor;
    LLMK_CHECK(v->tensor.shape == tk.shape, RangeError, "Expected v of the shape of k ", shape_str(tk.shape),
               " but received ", shape_str(v->tensor.shape));
    const int64_t Hq = tq.dim(-2), D = tq.dim(-1), Hkv = tk.dim(-2);
    LLMK_CHECK(tk.dim(-1) == D, RangeError, "Expected k with head dim ", D, " (that of q) but received ",
               shape_str(tk.shape));
    check_head_dims(Hq, Hkv, D);
    if (varlen) {
      LLMK_CHECK(cq->tensor.rank() == 1 && cq->tensor.dim(0) >= 1, RangeError,
                 "Expected cuSeqlensQ of shape [numSeqs + 1] but received ", shape_str(cq->tensor.shape));
      check_offsets("cuSeqlensQ", cq, q, cq->tensor.dim(0));
      check_offsets("cuSeqlensK", ck, q, cq->tensor.dim(0));
    } else {
      LLMK_CHECK(tk.dim(0) == tq.dim(0), RangeError, "Expected k with batch ", tq.dim(0),
                 " (that of q) but received ", shape_str(tk.shape));
    }
    AttnOpts o = parse_opts(info[5], D);
    LLMK_CHECK(o.p.window == 0, RangeError, "opts.window (sliding-window attention) is supported by pagedAttention only");
    Device* dev = q->device;
    Tensor out = make_tensor(dev, tq.shape, tq.dtype);
    Tensor lse;
    if (o.return_lse)
      lse = make_tensor(dev, varlen ? Shape{Hq, tq.dim(0)} : Shape{tq.dim(0), Hq, tq.dim(1)},
                        DType::F32);
    Backend* be = dev->backend.get();
    Tensor tv = v->tensor, kk = tk, qq = tq;
    Tensor cuq = varlen ? cq->tensor : Tensor{}, cuk = varlen ? ck->tensor : Tensor{};
    const AttentionParams p = o.p;
    const bool has_lse = o.return_lse;
    enqueue(dev, [=] {
      be->attention(qq, kk, tv, varlen ? &cuq : nullptr, varlen ? &cuk : nullptr, p, out, has_lse ? &lse : nullptr);
    });
    return result(info.Env(), dev, out, has_lse ? &lse : nullptr);
  });
}

// pagedAttention(q, kCache, vCache, blockTable, seqLens, opts) -> [out, lse | null]
Napi::Value PagedAttention(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* q = unwrap(info[0], "q");
    TensorHandle* kc = unwrap(info[1], "kCache");
    TensorHandle* vc = unwrap(info[2], "vCache");
    TensorHandle* bt = unwrap(info[3], "blockTable");
    TensorHandle* sl = unwrap(info[4], "seqLens");
    expect_dtype("q", q, {DType::F32, DType::F16, DType::BF16});
    LLMK_CHECK(q->tensor.rank() == 3, RangeError, "Expected q of rank 3 [T, Hq, D] but received shape ",
               shape_str(q->tensor.shape));
    check_same("kCache", kc, q);
    check_same("vCache", vc, q);
    const Tensor& tq = q->tensor;
    const int64_t T = tq.dim(0), Hq = tq.dim(1), D = tq.dim(2);
    LLMK_CHECK(kc->tensor.rank() == 4 && kc->tensor.dim(3) == D && kc->tensor.dim(1) >= 1, RangeError,
               "Expected kCache of shape [numPages, pageSize, Hkv, ", D, "] but received ",
               shape_str(kc->tensor.shape));
    LLMK_CHECK(vc->tensor.shape == kc->tensor.shape, RangeError, "Expected vCache of the shape of kCache ",
               shape_str(kc->tensor.shape), " but received ", shape_str(vc->tensor.shape));
    check_head_dims(Hq, kc->tensor.dim(2), D);
    same_device("q", q, "blockTable", bt);
    same_device("q", q, "seqLens", sl);
    expect_dtype("blockTable", bt, {DType::I32});
    expect_dtype("seqLens", sl, {DType::I32});
    LLMK_CHECK(bt->tensor.rank() == 2 && bt->tensor.dim(0) == T, RangeError, "Expected blockTable of shape [", T,
               ", maxPages] but received ", shape_str(bt->tensor.shape));
    LLMK_CHECK(sl->tensor.rank() == 1 && sl->tensor.dim(0) == T, RangeError, "Expected seqLens of shape [", T,
               "] but received ", shape_str(sl->tensor.shape));
    AttnOpts o = parse_opts(info[5], D);
    Device* dev = q->device;
    Tensor out = make_tensor(dev, tq.shape, tq.dtype);
    Tensor lse;
    if (o.return_lse) lse = make_tensor(dev, {T, Hq}, DType::F32);
    Backend* be = dev->backend.get();
    Tensor qq = tq, tk = kc->tensor, tv = vc->tensor, tb = bt->tensor, ts = sl->tensor;
    const AttentionParams p = o.p;
    const bool has_lse = o.return_lse;
    enqueue(dev, [=] { be->paged_attention(qq, tk, tv, tb, ts, p, out, has_lse ? &lse : nullptr); });
    return result(info.Env(), dev, out, has_lse ? &lse : nullptr);
  });
}

// attentionNaive(q, k, v, opts) -> out: bench baseline (dense; scores materialized).
Napi::Value AttentionNaive(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* q = unwrap(info[0], "q");
    TensorHandle* k = unwrap(info[1], "k");
    TensorHandle* v = unwrap(info[2], "v");
    expect_dtype("q", q, {DType::F32, DType::F16, DType::BF16});
    check_same("k", k, q);
    check_same("v", v, q);
    const Tensor &tq = q->tensor, &tk = k->tensor;
    LLMK_CHECK(tq.rank() == 4 && tk.rank() == 4 && v->tensor.shape == tk.shape && tk.dim(0) == tq.dim(0) &&
                   tk.dim(3) == tq.dim(3),
               RangeError, "Expected q [B, Sq, Hq, D] and k, v [B, Sk, Hkv, D]");
    check_head_dims(tq.dim(2), tk.dim(2), tq.dim(3));
    AttnOpts o = parse_opts(info[3], tq.dim(3));
    LLMK_CHECK(o.p.window == 0, RangeError, "opts.window (sliding-window attention) is supported by pagedAttention only");
    Device* dev = q->device;
    Tensor out = make_tensor(dev, tq.shape, tq.dtype);
    Tensor qq = tq, kk = tk, vv = v->tensor;
    const AttentionParams p = o.p;
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->attention_naive(qq, kk, vv, p, out); });
    return TensorHandle::New(info.Env(), out, dev);
  });
}

}  // namespace

void init_attention_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("pagedAttention", Napi::Function::New(env, PagedAttention));
  exports.Set("attentionNaive", Napi::Function::New(env, AttentionNaive));
}

}  // namespace llmk::napi
