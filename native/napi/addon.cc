// Registration only: each op family registers its own functions.
#include "napi/tensor_handle.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  llmk::napi::init_tensor_functions(env, exports);
  llmk::napi::init_basic_ops(env, exports);
  llmk::napi::init_rope_ops(env, exports);
  llmk::napi::init_int8_ops(env, exports);
  llmk::napi::init_sparse24_ops(env, exports);
#ifdef LLMK_WITH_SIMT
  llmk::napi::init_simt_control(env, exports);
#endif
  llmk::napi::init_bench(env, exports);
  llmk::napi::init_attention_ops(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(llmk, Init)
