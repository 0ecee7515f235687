// LLM.int8() (Dettmers et al. 2022, arXiv 2208.07339): vector-wise int8 matmul with
// the outlier feature columns of x kept in floating point.
//
//   weights (once):  sw[n] = max |w[n,:]|,  q = round(w·127/sw)                     (i8)
//   x (per call):    O = { k : some finite |x[m,k]| >= threshold }  (threshold 0: O = ∅)
//                    sx[m] = max_{k∉O} |x[m,k]|,  xq = round(x·127/sx),  xq[:,O] = 0
//   y = (xq·qᵀ) ⊙ (sx ⊗ sw)/127² + x[:,O]·deq(w[:,O])ᵀ + bias,   deq(w) = q·sw/127
//
// round = round half to even of the f32 product v·(127/absmax) (both factors f32).
// Non-finite values in x: a row holding NaN or ±Inf yields a row of NaN; it plays no
// part in choosing O, and every other row is computed as if it were not there.
import { native } from '../native.js';
import { Tensor, wrap } from '../tensor.js';
import {
  assertBias, assertFiniteNumber, assertOptions, assertRank, assertTensor, assertTensorDType, describe,
} from '../validate.js';

/** i32 accumulation bound: 255·127·K < 2^31. */
const MAX_K = 65536;

/** A weight quantized by {@link quantizeWeight}; lives on the device of the source weight. */
export class Int8Weight {
  /** i8 [N, K] */
  readonly q: Tensor;
  /** f32 [N]: sw = max |w[n,:]| */
  readonly scale: Tensor;
  /** @internal i32 [N]: Σ_k q[n,k], for kernels that offset x to unsigned bytes */
  readonly rowsum: Tensor;

  /** @internal — use quantizeWeight(). */
  constructor(q: Tensor, scale: Tensor, rowsum: Tensor) {
    this.q = q;
    this.scale = scale;
    this.rowsum = rowsum;
  }

  /** [N, K] of the source weight. */
  get shape(): readonly number[] {
    return this.q.shape;
  }

  get device(): string {
    return this.q.device;
  }

  get disposed(): boolean {
    return this.q.disposed || this.scale.disposed || this.rowsum.disposed;
  }

  dispose(): void {
    this.q.dispose();
    this.scale.dispose();
    this.rowsum.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export interface Int8Options {
  /** outlier threshold on |x| (default 6.0, as bitsandbytes); 0 = pure vector-wise int8 */
  threshold?: number;
}

export interface Int8MatmulOptions extends Int8Options {
  /** [N], same dtype and device as x */
  bias?: Tensor;
}

export interface QuantizedRows {
  /** i8 [M, K]; zero at the outlier columns */
  q: Tensor;
  /** f32 [M]: sx = max |x[m, k ∉ O]| (NaN for a row holding NaN/±Inf) */
  scale: Tensor;
  /** the outlier columns O, ascending */
  outlierColumns: number[];
}

function checkThreshold(opts: Int8Options): number {
  const threshold = opts.threshold ?? 6.0;
  assertFiniteNumber(threshold, 'opts.threshold', { min: 0 });
  return threshold;
}

function checkActivations(x: Tensor): void {
  assertTensor(x, 'x');
  assertRank(x, 'x', 2, '[M, K]');
  assertTensorDType(x, 'x', ['f16', 'f32']);
  const K = x.shape[1];
  if (K < 1 || K > MAX_K) throw new RangeError(`Expected x with K in [1, ${MAX_K}] but received [${x.shape.join(', ')}]`);
}

/**
 * Quantizes w[N,K] (f32, f16 or bf16) row-wise to int8 once, for {@link matmul}.
 * A weight holding NaN or ±Inf fails (RangeError) at the next sync point.
 * @example const w8 = int8.quantizeWeight(w); const y = int8.matmul(x, w8)
 */
export function quantizeWeight(w: Tensor): Int8Weight {
  assertTensor(w, 'w');
  assertRank(w, 'w', 2, '[N, K]');
  assertTensorDType(w, 'w', ['f32', 'f16', 'bf16']);
  const [N, K] = w.shape;
  if (K < 1 || K > MAX_K) throw new RangeError(`Expected w with K in [1, ${MAX_K}] but received [${w.shape.join(', ')}]`);
  const [q, scale, rowsum] = native().int8QuantizeWeight(w.handle);
  return new Int8Weight(wrap(q, [N, K], 'i8', w.device), wrap(scale, [N], 'f32', w.device), wrap(rowsum, [N], 'i32', w.device));
}

/**
 * The activation side of int8.matmul on its own: outlier columns, per-row scales and
 * int8 rows. Waits for the device (the outlier set is data-dependent).
 * @example const { q, scale, outlierColumns } = await int8.quantizeRows(x, { threshold: 6 })
 */
export async function quantizeRows(x: Tensor, opts: Int8Options = {}): Promise<QuantizedRows> {
  checkActivations(x);
  assertOptions(opts, 'opts');
  const threshold = checkThreshold(opts);
  const [M, K] = x.shape;
  const [q, scale, mask] = native().int8QuantizeRows(x.handle, threshold);
  const maskT = wrap(mask, [K], 'i32', x.device);
  const flags = await maskT.toArray();
  maskT.dispose();
  const outlierColumns: number[] = [];
  flags.forEach((f, k) => {
    if (f) outlierColumns.push(k);
  });
  return { q: wrap(q, [M, K], 'i8', x.device), scale: wrap(scale, [M], 'f32', x.device), outlierColumns };
}

/**
 * y[M,N] = x[M,K] · wᵀ with w quantized by {@link quantizeWeight}, in x's dtype (f16 or f32):
 * one pass quantizes x and finds its outlier columns, one fused kernel does the int8
 * product, the dequantization, the outlier columns' product and the bias.
 * @example const y = int8.matmul(x, w8, { threshold: 6, bias })
 */
export function matmul(x: Tensor, w: Int8Weight, opts: Int8MatmulOptions = {}): Tensor {
  checkActivations(x);
  if (!(w instanceof Int8Weight))
    throw new TypeError(`Expected an Int8Weight (from int8.quantizeWeight) for w but received ${describe(w)}`);
  if (w.disposed) throw new Error('Int8Weight w has been disposed');
  assertOptions(opts, 'opts');
  const threshold = checkThreshold(opts);
  if (w.device !== x.device)
    throw new Error(`Expected x and w on the same device but x is on ${x.device} and w is on ${w.device}`);
  const [M, K] = x.shape;
  const [N, Kw] = w.shape;
  if (Kw !== K)
    throw new RangeError(`Expected w of shape [N, ${K}] to match x [${x.shape.join(', ')}] but received [${w.shape.join(', ')}]`);
  const { bias } = opts;
  assertBias(bias, x, N);
  const h = native().int8Matmul(x.handle, w.q.handle, w.scale.handle, w.rowsum.handle, bias?.handle ?? null, threshold);
  return wrap(h, [M, N], x.dtype, x.device);
}
