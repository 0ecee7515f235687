// Public exports only.
export type { DType } from './dtype.js';
export { Tensor, tensor, zeros, full, type TensorData, type TensorOptions } from './tensor.js';
export { devices, cudaStatus, synchronize, memory, type DeviceInfo } from './device.js';
export { matmul, type MatmulOptions } from './ops/matmul.js';
export { add, mul, rmsNorm, siluMul, embedding, softmax, argmax } from './ops/elementwise.js';
export { rope, ropeAndCache, ropeScalingFromHF, type KvCacheSlots, type RopeOptions, type RopeScaling } from './ops/rope.js';
export {
  flashAttention, flashAttentionVarlen, pagedAttention, pagedSlots, type AttentionOptions, type AttentionResult,
  type PagedAttentionOptions,
} from './ops/attention.js';
