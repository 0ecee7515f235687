// Public exports only.
export type { DType } from './dtype.js';
export { Tensor, tensor, zeros, full, type TensorData, type TensorOptions } from './tensor.js';
export { devices, cudaStatus, synchronize, memory, type DeviceInfo } from './device.js';
export { matmul, type MatmulOptions } from './ops/matmul.js';
export { add, mul, rmsNorm, siluMul, embedding, softmax, argmax } from './ops/elementwise.js';
export { rope, ropeAndCache, writeKvCache, ropeScalingFromHF, type KvCacheSlots, type RopeOptions, type RopeScaling } from './ops/rope.js';
export * as int8 from './ops/int8.js';
export type { Int8Weight, Int8Options, Int8MatmulOptions, QuantizedRows } from './ops/int8.js';
export * as sparse24 from './ops/sparse24.js';
export { Sparse24Weight, type PruneOptions } from './ops/sparse24.js';
export {
  flashAttention, flashAttentionVarlen, pagedAttention, pagedSlots, type AttentionOptions, type AttentionResult,
  type PagedAttentionOptions,
} from './ops/attention.js';
export { LlamaModel, type LoadOptions, type WeightFormat } from './model/llama.js';
export type { Completion, FinishReason, GenerateOptions, GeneratedToken, Prompt } from './model/engine.js';
export type { SamplingOptions } from './model/sampler.js';
export type { ChatMessage } from './loaders/tokenizer.js';
export { createDemoModel, type DemoPreset, type DemoModelOptions } from './model/demo.js';
export { parseConfig, type ModelConfig } from './model/config.js';
