#include "napi/tensor_handle.h"

#include <atomic>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace llmk::napi {
namespace {

// Per-environment state: the handle constructor and one thread-safe function per
// device that carries completed sync points back to the JS thread.
struct SyncDone {
  Napi::Promise::Deferred deferred;
  ResultFn result;
  std::string error;
};

struct DeviceChannel {
  Napi::ThreadSafeFunction tsfn;
  int pending = 0;  // JS thread only
};

struct EnvState {
  Napi::FunctionReference ctor;
  std::unordered_map<Device*, DeviceChannel> channels;
};

EnvState& env_state(Napi::Env env) {
  EnvState* s = env.GetInstanceData<EnvState>();
  if (!s) {
    s = new EnvState();
    env.SetInstanceData<EnvState>(s);
  }
  return *s;
}

DeviceChannel& channel(Napi::Env env, Device* dev) {
  auto& chans = env_state(env).channels;
  auto it = chans.find(dev);
  if (it != chans.end()) return it->second;
  DeviceChannel& ch = chans[dev];
  ch.tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "llmk-sync:" + dev->name, 0, 1);
  ch.tsfn.Unref(env);
  return ch;
}

}  // namespace

Napi::Function TensorHandle::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeTensor",
                                 {InstanceMethod("dispose", &TensorHandle::Dispose),
                                  InstanceMethod("isDisposed", &TensorHandle::IsDisposed)});
  env_state(env).ctor = Napi::Persistent(f);
  return f;
}

Napi::Object TensorHandle::New(Napi::Env env, Tensor t, Device* dev) {
  Napi::Object o = env_state(env).ctor.New({});
  TensorHandle* h = Unwrap(o);
  h->tensor = std::move(t);
  h->device = dev;
  dev->live_tensors++;
  report_external_memory(env);
  return o;
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() { release(); }

void TensorHandle::release() {
  if (tensor.storage) {
    tensor.storage.reset();
    if (device) device->live_tensors--;
  }
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  release();
  report_external_memory(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed());
}

TensorHandle* unwrap(const Napi::Value& v, const char* what) {
  Napi::Env env = v.Env();
  auto& ctor = env_state(env).ctor;
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor.Value()))
    fail(ErrorKind::TypeError, "Expected a Tensor for ", what, " but received ",
         v.IsNull() ? "null" : v.IsUndefined() ? "undefined" : "a value of another type");
  TensorHandle* h = TensorHandle::Unwrap(v.As<Napi::Object>());
  LLMK_CHECK(!h->disposed(), Error, "Tensor ", what, " has been disposed");
  return h;
}

TensorHandle* unwrap_optional(const Napi::Value& v, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return unwrap(v, what);
}

DType parse_dtype(const Napi::Value& v, const char* what) {
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>();
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I8, DType::I32})
      if (s == dtype_name(t)) return t;
    fail(ErrorKind::TypeError, "Expected one of f32, f16, bf16, i8, i32 for ", what, " but received '", s, "'");
  }
  fail(ErrorKind::TypeError, "Expected a dtype string for ", what);
}

Device* parse_device(const Napi::Value& v, const char* what) {
  LLMK_CHECK(v.IsString(), TypeError, "Expected a device name string for ", what);
  const std::string s = v.As<Napi::String>();
  Device* d = find_device(s);
  if (!d) {
    std::string names;
    for (Device* x : all_devices()) names += (names.empty() ? "" : ", ") + x->name;
    fail(ErrorKind::Error, "Unknown or unavailable device '", s, "' for ", what, "; available: ", names);
  }
  return d;
}

double parse_number(const Napi::Value& v, const char* what) {
  LLMK_CHECK(v.IsNumber(), TypeError, "Expected a number for ", what);
  return v.As<Napi::Number>().DoubleValue();
}

Shape parse_shape(const Napi::Value& v, const char* what) {
  LLMK_CHECK(v.IsArray(), TypeError, "Expected an array of sizes for ", what);
  Napi::Array a = v.As<Napi::Array>();
  LLMK_CHECK(a.Length() <= uint32_t(Shape::kMaxRank), RangeError, "Expected at most ", Shape::kMaxRank, " sizes for ",
             what, " but received ", a.Length());
  Shape shape;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    LLMK_CHECK(e.IsNumber(), TypeError, "Expected integer sizes for ", what, " but element ", i, " is not a number");
    const double d = e.As<Napi::Number>().DoubleValue();
    LLMK_CHECK(d >= 0 && d == double(int64_t(d)) && d < 9007199254740992.0, RangeError,
               "Expected non-negative integer sizes for ", what, " but element ", i, " is ", d);
    shape.push_back(int64_t(d));
  }
  return shape;
}

void same_device(const char* what_a, const TensorHandle* a, const char* what_b, const TensorHandle* b) {
  LLMK_CHECK(a->device == b->device, Error, "Expected ", what_a, " and ", what_b,
             " on the same device but ", what_a, " is on ", a->device->name, " and ", what_b, " is on ",
             b->device->name);
}

void expect_dtype(const char* what, const TensorHandle* t, std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t->tensor.dtype == d) return;
  std::string names;
  for (DType d : allowed) names += (names.empty() ? "" : "|") + std::string(dtype_name(d));
  fail(ErrorKind::TypeError, "Expected dtype ", names, " for ", what, " but received ", dtype_name(t->tensor.dtype));
}

Tensor make_tensor(Device* dev, Shape shape, DType dtype, bool poison) {
  // Overflow-checked byte count: a shape whose size does not fit is bad input.
  unsigned __int128 n = dtype_size(dtype);
  for (int64_t d : shape) {
    n *= uint64_t(d);
    LLMK_CHECK(n < (unsigned __int128)1 << 62, RangeError, "Expected a tensor size that fits in memory but shape ",
               shape_str(shape), " of ", dtype_name(dtype), " overflows");
  }
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.storage = std::make_shared<Storage>(dev->backend.get(), size_t(n));
  static const bool poison_enabled = [] {
    const char* e = std::getenv("LLMK_POISON");
    return e && *e && *e != '0';
  }();
  if (poison && poison_enabled && t.numel() > 0) {
    Backend* be = dev->backend.get();
    const double v = dtype_is_float(dtype) ? std::numeric_limits<double>::quiet_NaN() : -1.0;
    enqueue(dev, [t, be, v] { be->fill(t, v); });
  }
  return t;
}

Napi::Promise sync_promise(Napi::Env env, Device* dev, ResultFn result) {
  auto deferred = Napi::Promise::Deferred::New(env);
  DeviceChannel& ch = channel(env, dev);
  if (ch.pending++ == 0) ch.tsfn.Ref(env);
  auto* req = new SyncDone{deferred, std::move(result), {}};
  DeviceChannel* chp = &ch;
  Napi::ThreadSafeFunction tsfn = ch.tsfn;
  dev->stream->sync([req, chp, tsfn](const std::string& err) mutable {
    req->error = err;
    tsfn.NonBlockingCall(req, [chp](Napi::Env env, Napi::Function, SyncDone* r) {
      std::unique_ptr<SyncDone> own(r);
      if (--chp->pending == 0) chp->tsfn.Unref(env);
      if (!r->error.empty()) {
        r->deferred.Reject(Napi::Error::New(env, r->error).Value());
        return;
      }
      try {
        r->deferred.Resolve(r->result ? r->result(env) : env.Undefined());
      } catch (const Napi::Error& e) {
        r->deferred.Reject(e.Value());
      } catch (const std::exception& e) {
        r->deferred.Reject(Napi::Error::New(env, e.what()).Value());
      }
    });
  });
  return deferred.Promise();
}

void report_external_memory(Napi::Env env) {
  // Reported in steps of >= 1 MiB: calling V8 on every tiny op's allocation would cost
  // more than the op's enqueue itself.
  static thread_local int64_t pending = 0;
  pending += take_external_memory_delta();
  if (pending >= (int64_t(1) << 20) || pending <= -(int64_t(1) << 20)) {
    Napi::MemoryManagement::AdjustExternalMemory(env, pending);
    pending = 0;
  }
}

Napi::Value guarded(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Error& e) {
    switch (e.kind()) {
      case ErrorKind::TypeError: throw Napi::TypeError::New(env, e.what());
      case ErrorKind::RangeError: throw Napi::RangeError::New(env, e.what());
      default: throw Napi::Error::New(env, e.what());
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "out of host memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace llmk::napi
