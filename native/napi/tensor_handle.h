// The JS handle of a tensor (ObjectWrap) and the helpers every op binding uses:
// unwrap-and-validate arguments, allocate outputs, enqueue work, settle promises.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/stream.h"
#include "llmk/tensor.h"

namespace llmk::napi {

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Wraps `t` (living on `dev`) in a new JS handle.
  static Napi::Object New(Napi::Env env, Tensor t, Device* dev);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  Tensor tensor;
  Device* device = nullptr;
  bool disposed() const { return !tensor.storage; }
  void release();

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
};

// Argument helpers. `what` names the argument in error messages ("x", "w", ...).
TensorHandle* unwrap(const Napi::Value& v, const char* what);
TensorHandle* unwrap_optional(const Napi::Value& v, const char* what);  // null/undefined -> nullptr
DType parse_dtype(const Napi::Value& v, const char* what);
Device* parse_device(const Napi::Value& v, const char* what);
Shape parse_shape(const Napi::Value& v, const char* what);
double parse_number(const Napi::Value& v, const char* what);
void same_device(const char* what_a, const TensorHandle* a, const char* what_b, const TensorHandle* b);
void expect_dtype(const char* what, const TensorHandle* t, std::initializer_list<DType> allowed);

// A fresh tensor on `dev` for an op to write. With LLMK_POISON=1 in the environment
// (the test suite sets it) it is first filled with NaN (floats) or -1 (integers), so
// an element a kernel forgets to write fails the comparison instead of passing as 0.
Tensor make_tensor(Device* dev, Shape shape, DType dtype, bool poison = true);

// Enqueue `work` on the device stream; tensors captured in `work` stay alive until it ran.
template <class F>
void enqueue(Device* dev, F&& work) {
  dev->stream->enqueue(Task(std::forward<F>(work)));
}

// Returns a promise settled on the JS thread once all earlier work on `dev` ran:
// rejected with the first pending device error, else resolved with `result()`.
using ResultFn = std::function<Napi::Value(Napi::Env)>;
Napi::Promise sync_promise(Napi::Env env, Device* dev, ResultFn result);

// Reports native allocation changes to V8 (call after allocating or freeing).
void report_external_memory(Napi::Env env);

// Runs `body`, mapping llmk::Error kinds to JS TypeError / RangeError / Error.
Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body);

// Registration of op families (one file each).
void init_tensor_functions(Napi::Env env, Napi::Object exports);
void init_basic_ops(Napi::Env env, Napi::Object exports);
void init_rope_ops(Napi::Env env, Napi::Object exports);
void init_int8_ops(Napi::Env env, Napi::Object exports);
void init_sparse24_ops(Napi::Env env, Napi::Object exports);
#ifdef LLMK_WITH_SIMT
void init_simt_control(Napi::Env env, Napi::Object exports);
#endif
void init_bench(Napi::Env env, Napi::Object exports);
void init_attention_ops(Napi::Env env, Napi::Object exports);

}  // namespace llmk::napi
