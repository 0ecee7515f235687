// Test hooks of the simt device: the schedule (forward / reverse / random) that
// decides in which order a block's threads run between barriers.
#ifdef LLMK_WITH_SIMT
#include "napi/tensor_handle.h"

namespace llmk_simt {
int set_schedule(int s);
const char* schedule_name(int s);
}  // namespace llmk_simt

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

}  // namespace

void init_simt_control(Napi::Env env, Napi::Object exports) {
  exports.Set("simtSchedule", Napi::Function::New(env, SimtSchedule));
}

}  // namespace llmk::napi
#endif
