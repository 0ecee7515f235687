import { FLOAT_DTYPES } from '../dtype.js';
import { native } from '../native.js';
import { Tensor, wrap } from '../tensor.js';
import {
  assertBias, assertOptions, assertRank, assertSameDevice, assertSameDType, assertTensor, assertTensorDType,
} from '../validate.js';

export interface MatmulOptions {
  /** [N], same dtype and device as x */
  bias?: Tensor;
}

/**
 * Dense matmul, PyTorch nn.Linear convention: y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).
 * f32, f16 and bf16 (f32 accumulation).
 * @example const y = matmul(x, w, { bias })
 */
export function matmul(x: Tensor, w: Tensor, opts: MatmulOptions = {}): Tensor {
  assertTensor(x, 'x');
  assertTensor(w, 'w');
  assertOptions(opts, 'opts');
  assertRank(x, 'x', 2, '[M, K]');
  assertRank(w, 'w', 2, '[N, K]');
  assertTensorDType(x, 'x', FLOAT_DTYPES);
  assertSameDType(x, 'x', w, 'w');
  assertSameDevice(x, 'x', w, 'w');
  const [M, K] = x.shape;
  const [N, Kw] = w.shape;
  if (Kw !== K)
    throw new RangeError(`Expected w of shape [N, ${K}] to match x [${x.shape.join(', ')}] but received [${w.shape.join(', ')}]`);
  const { bias } = opts;
  assertBias(bias, x, N);
  return wrap(native().matmul(x.handle, w.handle, bias?.handle ?? null), [M, N], x.dtype, x.device);
}
