// The small ops a decoder needs. All compute in f32 whatever the storage dtype.
import { FLOAT_DTYPES } from '../dtype.js';
import { native } from '../native.js';
import { Tensor, wrap } from '../tensor.js';
import {
  assertFiniteNumber, assertSameDevice, assertSameDType, assertTensor, assertTensorDType,
} from '../validate.js';

function binaryOp(op: 'add' | 'mul', a: Tensor, b: Tensor): Tensor {
  assertTensor(a, 'a');
  assertTensor(b, 'b');
  assertTensorDType(a, 'a', FLOAT_DTYPES);
  assertSameDType(a, 'a', b, 'b');
  assertSameDevice(a, 'a', b, 'b');
  const as = a.shape;
  const bs = b.shape;
  const ok = bs.length <= as.length && bs.every((d, i) => d === as[as.length - bs.length + i]);
  if (!ok)
    throw new RangeError(`Expected b's shape [${bs.join(', ')}] to equal a's shape [${as.join(', ')}] or a trailing part of it`);
  return wrap(native().binary(op, a.handle, b.handle), as, a.dtype, a.device);
}

/** a + b (b may broadcast over a's leading dims, e.g. a bias row). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binaryOp('add', a, b);
}

/** a * b elementwise (b may broadcast over a's leading dims). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binaryOp('mul', a, b);
}

/** RMSNorm over the last dim: x / sqrt(mean(x²) + eps) * weight. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  assertTensor(x, 'x');
  assertTensor(weight, 'weight');
  assertTensorDType(x, 'x', FLOAT_DTYPES);
  assertSameDType(x, 'x', weight, 'weight');
  assertSameDevice(x, 'x', weight, 'weight');
  assertFiniteNumber(eps, 'eps', { min: 0 });
  const D = x.shape[x.shape.length - 1];
  if (x.shape.length < 1 || weight.shape.length !== 1 || weight.shape[0] !== D || D === 0)
    throw new RangeError(`Expected weight of shape [${D}] (x's last dim) but received [${weight.shape.join(', ')}]`);
  return wrap(native().rmsNorm(x.handle, weight.handle, eps), x.shape, x.dtype, x.device);
}

/** silu(gate) * up — the SwiGLU activation of Llama MLPs. */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  assertTensor(gate, 'gate');
  assertTensor(up, 'up');
  assertTensorDType(gate, 'gate', FLOAT_DTYPES);
  assertSameDType(gate, 'gate', up, 'up');
  assertSameDevice(gate, 'gate', up, 'up');
  if (gate.shape.length !== up.shape.length || gate.shape.some((d, i) => d !== up.shape[i]))
    throw new RangeError(`Expected up of shape [${gate.shape.join(', ')}] but received [${up.shape.join(', ')}]`);
  return wrap(native().siluMul(gate.handle, up.handle), gate.shape, gate.dtype, gate.device);
}

/** Row gather: out[..., :] = table[ids[...], :]. ids are i32; an out-of-range id fails at the next sync. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  assertTensor(table, 'table');
  assertTensor(ids, 'ids');
  assertTensorDType(table, 'table', FLOAT_DTYPES);
  assertTensorDType(ids, 'ids', ['i32']);
  assertSameDevice(table, 'table', ids, 'ids');
  if (table.shape.length !== 2)
    throw new RangeError(`Expected table of rank 2 [vocab, dim] but received [${table.shape.join(', ')}]`);
  return wrap(native().embedding(table.handle, ids.handle), [...ids.shape, table.shape[1]], table.dtype, table.device);
}

/** Softmax over the last dim. */
export function softmax(x: Tensor): Tensor {
  assertTensor(x, 'x');
  assertTensorDType(x, 'x', FLOAT_DTYPES);
  if (x.shape.length < 1) throw new RangeError('Expected x of rank >= 1 but received a scalar');
  return wrap(native().softmax(x.handle), x.shape, x.dtype, x.device);
}

/** Index of the maximum over the last dim (first one on ties; NaN wins) as i32. */
export function argmax(x: Tensor): Tensor {
  assertTensor(x, 'x');
  assertTensorDType(x, 'x', FLOAT_DTYPES);
  if (x.shape.length < 1 || x.shape[x.shape.length - 1] === 0)
    throw new RangeError(`Expected x of rank >= 1 with a non-empty last dim but received [${x.shape.join(', ')}]`);
  return wrap(native().argmax(x.handle), x.shape.slice(0, -1), 'i32', x.device);
}
