// Exact attention (FlashAttention forward) and decode over a paged KV cache.
//
// Layouts follow flash-attn: q[B,Sq,Hq,D], k/v[B,Sk,Hkv,D]; GQA/MQA when Hq is a
// multiple of Hkv (q head h reads kv head h / (Hq/Hkv)). The causal mask is aligned
// bottom-right when Sq ≠ Sk (query i sees keys j ≤ i + Sk − Sq); a query that sees no
// key gets 0. Head dims: any multiple of 8 up to 256; f32, f16 and bf16 (softmax and
// accumulation in f32).
import { FLOAT_DTYPES } from '../dtype.js';
import { native } from '../native.js';
import type { NativeTensor } from '../native-types.js';
import { Tensor } from '../tensor.js';
import {
  assertFiniteNumber, assertOptions, assertRank, assertSameDevice, assertSameDType, assertTensor, assertTensorDType,
  describe,
} from '../validate.js';

export interface AttentionOptions {
  /** mask future keys, aligned bottom-right (default false) */
  causal?: boolean;
  /** softmax scale, default 1/sqrt(D) */
  scale?: number;
  /** also return the log-sum-exp of the scaled scores (f32; natural log) */
  returnLse?: boolean;
}

export interface PagedAttentionOptions {
  scale?: number;
  returnLse?: boolean;
  /** KV splits per (sequence, kv head) for flash-decoding; default: chosen from the work size */
  numSplits?: number;
  /**
   * Sliding-window attention (Mistral): a row of length len sees only its last `window`
   * keys, j >= len − window (a token attends to positions i − window < j <= i); 0 or
   * absent: every key.
   */
  window?: number;
}

export interface AttentionResult {
  out: Tensor;
  /** dense: [B, Hq, Sq]; packed: [Hq, Tq]; paged: [T, Hq] — only with returnLse */
  lse?: Tensor;
}

const shape = (t: Tensor) => `[${t.shape.join(', ')}]`;

function checkHeads(Hq: number, Hkv: number, D: number): void {
  if (D % 8 !== 0 || D < 8 || D > 256)
    throw new RangeError(`Expected a head dim D that is a multiple of 8 in [8, 256] but received ${D}`);
  if (Hkv < 1 || Hq % Hkv !== 0)
    throw new RangeError(`Expected the q head count (${Hq}) to be a multiple of the kv head count (${Hkv})`);
}

function checkScale(opts: { scale?: number }): void {
  if (opts.scale !== undefined) assertFiniteNumber(opts.scale, 'opts.scale');
}

function checkQkv(q: Tensor, k: Tensor, v: Tensor, rank: number, dims: string): void {
  assertTensor(q, 'q');
  assertTensor(k, 'k');
  assertTensor(v, 'v');
  assertRank(q, 'q', rank, dims);
  assertRank(k, 'k', rank, dims);
  assertRank(v, 'v', rank, dims);
  assertTensorDType(q, 'q', FLOAT_DTYPES);
  assertSameDevice(q, 'q', k, 'k');
  assertSameDevice(q, 'q', v, 'v');
  assertSameDType(q, 'q', k, 'k');
  assertSameDType(q, 'q', v, 'v');
  if (v.shape.some((d, i) => d !== k.shape[i])) throw new RangeError(`Expected v of the shape of k ${shape(k)} but received ${shape(v)}`);
  const D = q.shape[rank - 1];
  if (k.shape[rank - 1] !== D) throw new RangeError(`Expected k with head dim ${D} (that of q) but received ${shape(k)}`);
  checkHeads(q.shape[rank - 2], k.shape[rank - 2], D);
}

function wrap(r: [NativeTensor, NativeTensor | null], outShape: readonly number[], lseShape: number[], q: Tensor): AttentionResult {
  const out = new Tensor(r[0], outShape, q.dtype, q.device);
  return r[1] ? { out, lse: new Tensor(r[1], lseShape, 'f32', q.device) } : { out };
}

/**
 * softmax(q·kᵀ·scale [+ causal mask]) · v for q[B,Sq,Hq,D], k/v[B,Sk,Hkv,D] → out[B,Sq,Hq,D].
 * Memory stays O(S): the Sq×Sk score matrix is never formed.
 * @example const { out } = flashAttention(q, k, v, { causal: true })
 */
export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): AttentionResult {
  checkQkv(q, k, v, 4, '[B, S, H, D]');
  assertOptions(opts, 'opts');
  checkScale(opts);
  if (k.shape[0] !== q.shape[0]) throw new RangeError(`Expected k with batch ${q.shape[0]} (that of q) but received ${shape(k)}`);
  const [B, Sq, Hq] = q.shape;
  return wrap(native().attention(q.handle, k.handle, v.handle, null, null, opts), q.shape, [B, Hq, Sq], q);
}

/**
 * Packed variable-length prefill: sequence s owns q rows cuSeqlensQ[s]…cuSeqlensQ[s+1]
 * of q[Tq,Hq,D] and k/v rows cuSeqlensK[s]… of k/v[Tk,Hkv,D] (i32 offsets, starting at
 * 0, non-decreasing, ending at Tq / Tk — offsets are checked on the device and a bad
 * one fails at the next sync). Causal alignment is per sequence.
 * @example flashAttentionVarlen(q, k, v, tensor(new Int32Array([0, 5, 12]), [3]), cuK, { causal: true })
 */
export function flashAttentionVarlen(
  q: Tensor, k: Tensor, v: Tensor, cuSeqlensQ: Tensor, cuSeqlensK: Tensor, opts: AttentionOptions = {},
): AttentionResult {
  checkQkv(q, k, v, 3, '[T, H, D]');
  assertOptions(opts, 'opts');
  checkScale(opts);
  assertTensor(cuSeqlensQ, 'cuSeqlensQ');
  assertTensor(cuSeqlensK, 'cuSeqlensK');
  for (const [t, n] of [[cuSeqlensQ, 'cuSeqlensQ'], [cuSeqlensK, 'cuSeqlensK']] as const) {
    assertSameDevice(q, 'q', t, n);
    assertTensorDType(t, n, ['i32']);
    if (t.shape.length !== 1 || t.shape[0] < 1)
      throw new RangeError(`Expected ${n} of shape [numSeqs + 1] but received ${shape(t)}`);
  }
  if (cuSeqlensK.shape[0] !== cuSeqlensQ.shape[0])
    throw new RangeError(`Expected cuSeqlensK of shape [${cuSeqlensQ.shape[0]}] (that of cuSeqlensQ) but received ${shape(cuSeqlensK)}`);
  const [Tq, Hq] = q.shape;
  return wrap(native().attention(q.handle, k.handle, v.handle, cuSeqlensQ.handle, cuSeqlensK.handle, opts), q.shape, [Hq, Tq], q);
}

/**
 * Decode step over a paged KV cache (flash-decoding): q[T,Hq,D] holds one query per
 * sequence, which sees all seqLens[t] cached tokens of its sequence (or the last
 * opts.window of them). Caches are [numPages, pageSize, Hkv, D] (as written by
 * ropeAndCache); blockTable i32[T, maxPages] names the page of tokens i·pageSize…; any
 * pageSize works (the cpu kernel takes 8 keys per softmax step and reads K/V in place,
 * so pages need not align with it). Long sequences are split across threads (cpu) or
 * thread blocks (CUDA); partial outputs are merged by their log-sum-exp. Rows may also
 * be a prefill chunk — consecutive tokens of one sequence, lengths rising by one, the
 * same block-table row — and the cpu backend then runs each run of 8 or more such rows
 * through the FlashAttention tile kernel as one causal block (same result, K/V tiles
 * shared by the block's queries).
 * Page indices and lengths are checked on the device (a bad one fails at the next sync).
 */
export function pagedAttention(
  q: Tensor, kCache: Tensor, vCache: Tensor, blockTable: Tensor, seqLens: Tensor, opts: PagedAttentionOptions = {},
): AttentionResult {
  assertTensor(q, 'q');
  assertTensor(kCache, 'kCache');
  assertTensor(vCache, 'vCache');
  assertTensor(blockTable, 'blockTable');
  assertTensor(seqLens, 'seqLens');
  assertOptions(opts, 'opts');
  checkScale(opts);
  if (opts.numSplits !== undefined && (!Number.isInteger(opts.numSplits) || opts.numSplits < 0 || opts.numSplits > 65536))
    throw new RangeError(`Expected an integer opts.numSplits in [0, 65536] but received ${describe(opts.numSplits)}`);
  if (opts.window !== undefined && (!Number.isInteger(opts.window) || opts.window < 0 || opts.window > 2 ** 31 - 1))
    throw new RangeError(`Expected a non-negative integer opts.window (0 = no window) but received ${describe(opts.window)}`);
  assertRank(q, 'q', 3, '[T, Hq, D]');
  assertTensorDType(q, 'q', FLOAT_DTYPES);
  const [T, Hq, D] = q.shape;
  for (const [c, n] of [[kCache, 'kCache'], [vCache, 'vCache']] as const) {
    assertSameDevice(q, 'q', c, n);
    assertSameDType(q, 'q', c, n);
    if (c.shape.length !== 4 || c.shape[3] !== D || c.shape[1] < 1)
      throw new RangeError(`Expected ${n} of shape [numPages, pageSize, Hkv, ${D}] but received ${shape(c)}`);
  }
  if (vCache.shape.some((d, i) => d !== kCache.shape[i]))
    throw new RangeError(`Expected vCache of the shape of kCache ${shape(kCache)} but received ${shape(vCache)}`);
  checkHeads(Hq, kCache.shape[2], D);
  assertSameDevice(q, 'q', blockTable, 'blockTable');
  assertSameDevice(q, 'q', seqLens, 'seqLens');
  assertTensorDType(blockTable, 'blockTable', ['i32']);
  assertTensorDType(seqLens, 'seqLens', ['i32']);
  if (blockTable.shape.length !== 2 || blockTable.shape[0] !== T)
    throw new RangeError(`Expected blockTable of shape [${T}, maxPages] but received ${shape(blockTable)}`);
  if (seqLens.shape.length !== 1 || seqLens.shape[0] !== T)
    throw new RangeError(`Expected seqLens of shape [${T}] but received ${shape(seqLens)}`);
  const r = native().pagedAttention(q.handle, kCache.handle, vCache.handle, blockTable.handle, seqLens.handle, opts);
  return wrap(r, q.shape, [T, Hq], q);
}

/**
 * Cache slots (page·pageSize + offset) of tokens `positions` of sequence rows given as
 * host block-table rows — the `slots` argument of ropeAndCache, i.e. the write side of
 * the paged cache. Throws if a position lies past the pages the row names.
 */
export function pagedSlots(blockTableRows: ArrayLike<number>[], seqOfToken: ArrayLike<number>, positions: ArrayLike<number>, pageSize: number): Int32Array {
  assertFiniteNumber(pageSize, 'pageSize', { min: 1 });
  if (seqOfToken.length !== positions.length)
    throw new RangeError(`Expected positions of length ${seqOfToken.length} (that of seqOfToken) but received ${positions.length}`);
  const out = new Int32Array(positions.length);
  for (let t = 0; t < positions.length; t++) {
    const row = blockTableRows[seqOfToken[t]];
    if (row === undefined) throw new RangeError(`Expected seqOfToken[${t}] to name a block-table row but received ${seqOfToken[t]}`);
    const pos = positions[t];
    const page = row[Math.floor(pos / pageSize)];
    if (!Number.isInteger(pos) || pos < 0 || page === undefined)
      throw new RangeError(`Expected positions[${t}] in [0, ${row.length * pageSize}) but received ${pos}`);
    out[t] = page * pageSize + (pos % pageSize);
  }
  return out;
}

/** @internal Bench baseline: dense attention with the score matrix materialized (f16/bf16 only on cuda and simt). */
export function attentionNaive(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  checkQkv(q, k, v, 4, '[B, S, H, D]');
  checkScale(opts);
  return new Tensor(native().attentionNaive(q.handle, k.handle, v.handle, opts), q.shape, q.dtype, q.device);
}
