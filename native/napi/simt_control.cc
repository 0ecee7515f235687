// Test hooks of the simt device: the schedule (forward / reverse / random) that
// decides in which order a block's threads run between barriers.
#ifdef LLMK_WITH_SIMT
#include "napi/tensor_handle.h"

namespace llmk_simt {
int set_schedule(int s);
const char* schedule_name(int s);
long host_syncs();
}  // namespace llmk_simt
namespace llmk::simt {
void run_selftest(const std::string& name, const std::vector<void*>& buffers, int arg0, int arg1);
}  // namespace llmk::simt

namespace llmk::napi {
namespace {

// simtSchedule(name?) -> the schedule in force (after setting it when a name is given).
// Waits for queued simt work first, so no launch sees a change half-way.
Napi::Value SimtSchedule(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int s = -1;
    if (!info[0].IsUndefined()) {
      LLMK_CHECK(info[0].IsString(), TypeError, "Expected 'forward', 'reverse' or 'random' for schedule");
      const std::string name = info[0].As<Napi::String>();
      if (name == "forward") s = 0;
      else if (name == "reverse") s = 1;
      else if (name == "random") s = 2;
      else fail(ErrorKind::TypeError, "Expected 'forward', 'reverse' or 'random' for schedule but received '", name, "'");
      if (Device* d = find_device("simt")) d->stream->drain();
    }
    return Napi::String::New(info.Env(), llmk_simt::schedule_name(llmk_simt::set_schedule(s)));
  });
}

// simtSelfTest(name, buffers: TypedArray[], arg0, arg1): runs an emulator self-test
// kernel on the simt stream with the typed arrays as its (host = device) buffers.
Napi::Value SimtSelfTest(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    LLMK_CHECK(info[0].IsString(), TypeError, "Expected a self-test name");
    LLMK_CHECK(info[1].IsArray(), TypeError, "Expected an array of typed arrays for buffers");
    const std::string name = info[0].As<Napi::String>();
    Napi::Array arr = info[1].As<Napi::Array>();
    auto refs = std::make_shared<std::vector<Napi::Reference<Napi::Value>>>();
    std::vector<void*> ptrs;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      LLMK_CHECK(v.IsTypedArray(), TypeError, "Expected typed arrays in buffers");
      Napi::TypedArray ta = v.As<Napi::TypedArray>();
      ptrs.push_back(static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
      refs->push_back(Napi::Persistent(v));
    }
    const int a0 = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
    const int a1 = info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
    Device* dev = find_device("simt");
    LLMK_CHECK(dev, Error, "the simt device is not available");
    enqueue(dev, [name, ptrs, a0, a1] { llmk::simt::run_selftest(name, ptrs, a0, a1); });
    return sync_promise(env, dev, [refs](Napi::Env e) -> Napi::Value {
      refs->clear();
      return e.Undefined();
    });
  });
}

}  // namespace

// simtHostSyncs() -> how many times the host has waited for the simt stream
// (cudaStreamSynchronize) since start-up.
Napi::Value SimtHostSyncs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(llmk_simt::host_syncs()));
}

void init_simt_control(Napi::Env env, Napi::Object exports) {
  exports.Set("simtHostSyncs", Napi::Function::New(env, SimtHostSyncs));
  exports.Set("simtSchedule", Napi::Function::New(env, SimtSchedule));
  exports.Set("simtSelfTest", Napi::Function::New(env, SimtSelfTest));
}

}  // namespace llmk::napi
#endif
