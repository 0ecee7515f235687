// rope(q, k | null, positions, cfg) — rotates q and k in place in one queued op.
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

Napi::Value Rope(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* q = unwrap(info[0], "q");
    TensorHandle* k = unwrap_optional(info[1], "k");
    TensorHandle* p = unwrap(info[2], "positions");
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
    RopeConfig cfg = parse_rope_config(info[3], int(D));
    RopeTable table = rope_table(cfg);
    Device* dev = q->device;
    Tensor tq = q->tensor, tp = p->tensor;
    Backend* be = dev->backend.get();
    if (k) {
      Tensor tk = k->tensor;
      enqueue(dev, [=] { be->rope(tq, &tk, tp, cfg, table); });
    } else {
      enqueue(dev, [=] { be->rope(tq, nullptr, tp, cfg, table); });
    }
    return info.Env().Undefined();
  });
}

}  // namespace

void init_rope_ops(Napi::Env env, Napi::Object exports) { exports.Set("rope", Napi::Function::New(env, Rope)); }

}  // namespace llmk::napi
