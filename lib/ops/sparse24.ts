// 2:4 structured sparsity: at most 2 non-zeros in every group of 4 consecutive
// elements along K. Stored compressed: the 2 kept values per group ([N, K/2]) plus a
// 4-bit index nibble per group (i32 words [N, ceil(K/32)]; nibble = i0 | i1 << 2,
// ascending — the PTX ordered_metadata form). K must be a multiple of 4: every real
// model's is, and we reject other K rather than silently padding.
import { FLOAT_DTYPES, type DType } from '../dtype.js';
import { synchronize } from '../device.js';
import { native } from '../native.js';
import { Tensor, wrap } from '../tensor.js';
import {
  assertBias, assertOptions, assertRank, assertSameDevice, assertSameDType, assertTensor, assertTensorDType, describe,
} from '../validate.js';

/** A compressed 2:4 weight [N, K] (PyTorch nn.Linear layout). */
export class Sparse24Weight {
  /** @internal */
  constructor(
    readonly values: Tensor,
    readonly meta: Tensor,
    readonly shape: readonly [number, number],
  ) {}
  get dtype(): DType {
    return this.values.dtype;
  }
  get device(): string {
    return this.values.device;
  }
  get disposed(): boolean {
    return this.values.disposed || this.meta.disposed;
  }
  /** Bytes of the compressed form (values + metadata). */
  get nbytes(): number {
    return this.values.nbytes + this.meta.nbytes;
  }
  dispose(): void {
    this.values.dispose();
    this.meta.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function checkDense(w: Tensor, name: string): void {
  assertTensor(w, name);
  assertRank(w, name, 2, '[N, K]');
  assertTensorDType(w, name, FLOAT_DTYPES);
  if (w.shape[1] % 4 !== 0) throw new RangeError(`Expected ${name} with K a multiple of 4 (2:4 groups) but K = ${w.shape[1]}`);
}

function checkWeight(w: unknown, name: string): asserts w is Sparse24Weight {
  if (!(w instanceof Sparse24Weight)) throw new TypeError(`Expected a Sparse24Weight for ${name} but received ${describe(w)}`);
  if (w.disposed) throw new Error(`Sparse24Weight ${name} has been disposed`);
}

export type PruneOptions = { method: 'magnitude' } | { method: 'wanda'; activationNorms: Tensor };

/**
 * Dense copy of w keeping the 2 largest scores of each group of 4 (ties: lower index).
 * 'magnitude' scores |w|; 'wanda' scores |w|·‖x_k‖ from calibration activation norms [K].
 * @example const pruned = sparse24.prune(w, { method: 'magnitude' })
 */
export function prune(w: Tensor, opts: PruneOptions = { method: 'magnitude' }): Tensor {
  checkDense(w, 'w');
  assertOptions(opts, 'opts');
  if (opts.method === 'magnitude') return wrap(native().sparse24Prune(w.handle, null), w.shape, w.dtype, w.device);
  if (opts.method === 'wanda') {
    const n = opts.activationNorms;
    assertTensor(n, 'opts.activationNorms');
    assertSameDevice(w, 'w', n, 'opts.activationNorms');
    assertTensorDType(n, 'opts.activationNorms', FLOAT_DTYPES);
    if (n.shape.length !== 1 || n.shape[0] !== w.shape[1])
      throw new RangeError(`Expected opts.activationNorms of shape [${w.shape[1]}] but received [${n.shape.join(', ')}]`);
    return wrap(native().sparse24Prune(w.handle, n.handle), w.shape, w.dtype, w.device);
  }
  throw new TypeError(`Expected opts.method 'magnitude' or 'wanda' but received ${describe((opts as { method: unknown }).method)}`);
}

/**
 * Compresses a dense 2:4 weight. Resolves once the device has checked it: rejects,
 * naming the first row and group, when a group has more than 2 non-zeros.
 * @example const w24 = await sparse24.compress(sparse24.prune(w))
 */
export async function compress(w: Tensor): Promise<Sparse24Weight> {
  checkDense(w, 'w');
  const [v, m] = native().sparse24Compress(w.handle);
  const [N, K] = w.shape;
  const out = new Sparse24Weight(wrap(v, [N, K / 2], w.dtype, w.device), wrap(m, [N, Math.ceil(K / 32)], 'i32', w.device), [N, K]);
  try {
    await synchronize(w.device);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** The dense [N, K] weight back (bit-exact round trip of compress). */
export function decompress(w: Sparse24Weight): Tensor {
  checkWeight(w, 'w');
  return wrap(native().sparse24Decompress(w.values.handle, w.meta.handle, w.shape[1]), w.shape, w.dtype, w.device);
}

/**
 * y[M,N] = x[M,K] · Wᵀ (+ bias) reading only the compressed weight.
 * @example const y = sparse24.matmul(x, w24, { bias })
 */
export function matmul(x: Tensor, w: Sparse24Weight, opts: { bias?: Tensor } = {}): Tensor {
  assertTensor(x, 'x');
  checkWeight(w, 'w');
  assertOptions(opts, 'opts');
  assertRank(x, 'x', 2, '[M, K]');
  assertTensorDType(x, 'x', FLOAT_DTYPES);
  assertSameDevice(x, 'x', w.values, 'w');
  assertSameDType(x, 'x', w.values, 'w');
  const [N, K] = w.shape;
  if (x.shape[1] !== K)
    throw new RangeError(`Expected x of shape [M, ${K}] to match the weight [${N}, ${K}] but received [${x.shape.join(', ')}]`);
  const { bias } = opts;
  assertBias(bias, x, N);
  return wrap(native().sparse24Matmul(x.handle, w.values.handle, w.meta.handle, bias?.handle ?? null), [x.shape[0], N], x.dtype, x.device);
}
