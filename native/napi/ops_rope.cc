// rope(q, k | null, positions, cfg) — rotates q and k in place in one queued op;
// ropeCache writes the rotated k (and v) to a paged cache instead, kvCacheWrite the rows
// unrotated.
#include <cmath>

#include "napi/tensor_handle.h"

namespace llmk::napi {
namespace {

double get_number(const Napi::Object& o, const char* key, const char* what, double dflt, bool required = false) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    LLMK_CHECK(!required, TypeError, "Expected a number for ", what, " but it is missing");
    return dflt;
  }
  LLMK_CHECK(v.IsNumber(), TypeError, "Expected a number for ", what);
  const double d = v.As<Napi::Number>().DoubleValue();
  LLMK_CHECK(std::isfinite(d), RangeError, "Expected a finite number for ", what, " but received ", d);
  return d;
}

RopeConfig parse_rope_config(const Napi::Value& v, int D) {
  LLMK_CHECK(v.IsObject(), TypeError, "Expected an options object for rope opts");
  Napi::Object o = v.As<Napi::Object>();
  RopeConfig c;
  const std::string style = o.Get("style").IsString() ? o.Get("style").As<Napi::String>().Utf8Value() : "neox";
  LLMK_CHECK(style == "neox" || style == "gptj", TypeError, "Expected 'neox' or 'gptj' for opts.style but received '",
             style, "'");
  c.style = style == "neox" ? RopeStyle::Neox : RopeStyle::Gptj;
  const double rd = get_number(o, "rotaryDim", "opts.rotaryDim", D);
  LLMK_CHECK(rd == std::floor(rd) && rd >= 2 && rd <= D && int(rd) % 2 == 0, RangeError,
             "Expected an even opts.rotaryDim in [2, ", D, "] but received ", rd);
  c.rotary_dim = int(rd);
  c.base = get_number(o, "base", "opts.base", 10000.0);
  LLMK_CHECK(c.base > 1, RangeError, "Expected opts.base > 1 but received ", c.base);
  c.inverse = o.Get("inverse").ToBoolean();
  Napi::Value sv = o.Get("scaling");
  if (sv.IsUndefined() || sv.IsNull()) return c;
  LLMK_CHECK(sv.IsObject(), TypeError, "Expected an object for opts.scaling");
  Napi::Object s = sv.As<Napi::Object>();
  const std::string type = s.Get("type").IsString() ? s.Get("type").As<Napi::String>().Utf8Value() : "";
  c.factor = get_number(s, "factor", "opts.scaling.factor", 1.0, true);
  LLMK_CHECK(c.factor > 0, RangeError, "Expected opts.scaling.factor > 0 but received ", c.factor);
  auto orig = [&] {
    const double m = get_number(s, "originalMaxPositions", "opts.scaling.originalMaxPositions", 0, true);
    LLMK_CHECK(m >= 1, RangeError, "Expected opts.scaling.originalMaxPositions >= 1 but received ", m);
    return m;
  };
  if (type == "linear") {
    c.scaling = RopeScaling::Linear;
  } else if (type == "dynamic") {
    c.scaling = RopeScaling::Dynamic;
    c.original_max_positions = orig();
    c.seq_len = get_number(s, "seqLen", "opts.scaling.seqLen", 0, true);
    LLMK_CHECK(c.seq_len >= 0, RangeError, "Expected opts.scaling.seqLen >= 0 but received ", c.seq_len);
  } else if (type == "llama3") {
    c.scaling = RopeScaling::Llama3;
    c.original_max_positions = orig();
    c.low_freq_factor = get_number(s, "lowFreqFactor", "opts.scaling.lowFreqFactor", 1.0);
    c.high_freq_factor = get_number(s, "highFreqFactor", "opts.scaling.highFreqFactor", 4.0);
    LLMK_CHECK(c.high_freq_factor > c.low_freq_factor && c.low_freq_factor > 0, RangeError,
               "Expected 0 < opts.scaling.lowFreqFactor < highFreqFactor but received ", c.low_freq_factor, " and ",
               c.high_freq_factor);
  } else if (type == "yarn") {
    c.scaling = RopeScaling::Yarn;
    c.original_max_positions = orig();
    c.beta_fast = get_number(s, "betaFast", "opts.scaling.betaFast", 32.0);
    c.beta_slow = get_number(s, "betaSlow", "opts.scaling.betaSlow", 1.0);
    c.attn_factor = get_number(s, "attnFactor", "opts.scaling.attnFactor", -1.0);
    LLMK_CHECK(c.beta_fast > 0 && c.beta_slow > 0, RangeError, "Expected positive opts.scaling.betaFast/betaSlow");
  } else {
    fail(ErrorKind::TypeError, "Expected opts.scaling.type to be one of linear, dynamic, llama3, yarn but received '",
         type, "'");
  }
  return c;
}

struct RopeArgs {
  TensorHandle* q;
  TensorHandle* k;
  TensorHandle* positions;
};

RopeArgs check_rope_args(const Napi::Value& qv, const Napi::Value& kv, const Napi::Value& pv, bool k_required) {
  TensorHandle* q = unwrap(qv, "q");
  TensorHandle* k = k_required ? unwrap(kv, "k") : unwrap_optional(kv, "k");
  TensorHandle* p = unwrap(pv, "positions");
  expect_dtype("q", q, {DType::F32, DType::F16, DType::BF16});
  LLMK_CHECK(q->tensor.rank() == 3, RangeError, "Expected q of rank 3 [T, Hq, D] but received shape ",
             shape_str(q->tensor.shape));
  const int64_t T = q->tensor.dim(0), D = q->tensor.dim(2);
  if (k) {
    same_device("q", q, "k", k);
    LLMK_CHECK(k->tensor.dtype == q->tensor.dtype, TypeError, "Expected k to have the dtype of q (",
               dtype_name(q->tensor.dtype), ") but received ", dtype_name(k->tensor.dtype));
    LLMK_CHECK(k->tensor.rank() == 3 && k->tensor.dim(0) == T && k->tensor.dim(2) == D, RangeError,
               "Expected k of shape [", T, ", Hkv, ", D, "] but received ", shape_str(k->tensor.shape));
    LLMK_CHECK(k->tensor.storage != q->tensor.storage, Error, "Expected k and q to be different tensors (in place)");
  }
  same_device("q", q, "positions", p);
  expect_dtype("positions", p, {DType::I32});
  LLMK_CHECK(p->tensor.rank() == 1 && p->tensor.dim(0) == T, RangeError, "Expected positions of shape [", T,
             "] but received ", shape_str(p->tensor.shape));
  return {q, k, p};
}

// rope(q, k | null, positions, opts): q and k rotate in place.
Napi::Value Rope(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    RopeArgs a = check_rope_args(info[0], info[1], info[2], false);
    RopeConfig cfg = parse_rope_config(info[3], int(a.q->tensor.dim(2)));
    RopeTable table = rope_table(cfg);
    Device* dev = a.q->device;
    Tensor tq = a.q->tensor, tp = a.positions->tensor;
    Backend* be = dev->backend.get();
    if (a.k) {
      Tensor tk = a.k->tensor;
      enqueue(dev, [=] { be->rope(tq, &tk, tp, cfg, table, nullptr); });
    } else {
      enqueue(dev, [=] { be->rope(tq, nullptr, tp, cfg, table, nullptr); });
    }
    return info.Env().Undefined();
  });
}

// The cache destination of ropeCache and kvCacheWrite: v like k, slots i32 [T], caches
// [numPages, pageSize, Hkv, D] of k's dtype, all on `dev_of`'s device (`dev_name` in messages).
KvCacheWrite check_cache_args(const char* dev_name, const TensorHandle* dev_of, const Tensor& k, const Napi::Value& vv,
                              const Napi::Value& sv, const Napi::Value& kcv, const Napi::Value& vcv) {
  TensorHandle* v = unwrap(vv, "v");
  TensorHandle* slots = unwrap(sv, "slots");
  TensorHandle* kc = unwrap(kcv, "kCache");
  TensorHandle* vc = unwrap(vcv, "vCache");
  const int64_t T = k.dim(0), H = k.dim(1), D = k.dim(2);
  for (auto [name, h] : {std::pair{"v", v}, std::pair{"slots", slots}, std::pair{"kCache", kc}, std::pair{"vCache", vc}})
    same_device(dev_name, dev_of, name, h);
  LLMK_CHECK(v->tensor.shape == k.shape && v->tensor.dtype == k.dtype, RangeError, "Expected v of shape ",
             shape_str(k.shape), " and dtype ", dtype_name(k.dtype), " but received ", shape_str(v->tensor.shape), " ",
             dtype_name(v->tensor.dtype));
  expect_dtype("slots", slots, {DType::I32});
  LLMK_CHECK(slots->tensor.rank() == 1 && slots->tensor.dim(0) == T, RangeError, "Expected slots of shape [", T,
             "] but received ", shape_str(slots->tensor.shape));
  for (auto [name, h] : {std::pair{"kCache", kc}, std::pair{"vCache", vc}}) {
    const Tensor& c = h->tensor;
    LLMK_CHECK(c.rank() == 4 && c.dim(2) == H && c.dim(3) == D && c.dtype == k.dtype, RangeError, "Expected ", name,
               " of shape [numPages, pageSize, ", H, ", ", D, "] and dtype ", dtype_name(k.dtype), " but received ",
               shape_str(c.shape), " ", dtype_name(c.dtype));
  }
  LLMK_CHECK(kc->tensor.shape == vc->tensor.shape, RangeError, "Expected vCache of the shape of kCache ",
             shape_str(kc->tensor.shape), " but received ", shape_str(vc->tensor.shape));
  LLMK_CHECK(kc->tensor.storage != vc->tensor.storage, Error,
             "Expected kCache and vCache to be different tensors (both are written)");
  return {v->tensor, slots->tensor, kc->tensor, vc->tensor};
}

// ropeCache(q, k, v, positions, slots, kCache, vCache, opts): q rotates in place; rotated
// k rows and v rows land in the paged caches at slots[t].
Napi::Value RopeCache(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    RopeArgs a = check_rope_args(info[0], info[1], info[3], true);
    const Tensor& k = a.k->tensor;
    KvCacheWrite cache = check_cache_args("q", a.q, k, info[2], info[4], info[5], info[6]);
    RopeConfig cfg = parse_rope_config(info[7], int(k.dim(2)));
    RopeTable table = rope_table(cfg);
    Device* dev = a.q->device;
    Tensor tq = a.q->tensor, tk = k, tp = a.positions->tensor;
    Backend* be = dev->backend.get();
    enqueue(dev, [=] { be->rope(tq, &tk, tp, cfg, table, &cache); });
    return info.Env().Undefined();
  });
}

// kvCacheWrite(k, v, slots, kCache, vCache): k and v rows [T, Hkv, D] to the paged
// caches at slots[t], unrotated.
Napi::Value KvCacheWriteOp(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* k = unwrap(info[0], "k");
    expect_dtype("k", k, {DType::F32, DType::F16, DType::BF16});
    LLMK_CHECK(k->tensor.rank() == 3, RangeError, "Expected k of rank 3 [T, Hkv, D] but received shape ",
               shape_str(k->tensor.shape));
    KvCacheWrite cache = check_cache_args("k", k, k->tensor, info[1], info[2], info[3], info[4]);
    Tensor tk = k->tensor;
    Backend* be = k->device->backend.get();
    enqueue(k->device, [=] { be->kv_cache_write(tk, cache); });
    return info.Env().Undefined();
  });
}

}  // namespace

void init_rope_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("ropeCache", Napi::Function::New(env, RopeCache));
  exports.Set("kvCacheWrite", Napi::Function::New(env, KvCacheWriteOp));
}

}  // namespace llmk::napi
