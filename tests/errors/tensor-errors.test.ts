// Bad input to tensor creation and the small ops: clear errors naming the argument,
// the expectation and the actual value; never a crash.
import { describe, expect, it } from 'vitest';
import {
  add, argmax, embedding, full, int8, matmul, mul, rmsNorm, rope, siluMul, softmax, sparse24, synchronize, tensor, zeros,
} from '../../lib/index.js';
import { DEVICES, nativeForTests } from '../helpers.js';

describe('tensor creation errors', () => {
  it('rejects bad shapes', () => {
    expect(() => tensor([1, 2], [3])).toThrow(RangeError);
    expect(() => tensor([1, 2], [3])).toThrow(/Expected 3 elements for shape \[3\] but data has 2/);
    expect(() => zeros([-1])).toThrow(/non-negative integer sizes for shape but shape\[0\] is -1/);
    expect(() => zeros([2.5])).toThrow(RangeError);
    expect(() => zeros([1e12, 1e12])).toThrow(/overflows/);
    expect(() => zeros('3' as unknown as number[])).toThrow(TypeError);
    expect(zeros([1, 1, 1, 1, 1, 1, 1, 2]).shape).toEqual([1, 1, 1, 1, 1, 1, 1, 2]);
    expect(() => zeros([1, 1, 1, 1, 1, 1, 1, 1, 2])).toThrow(/Expected at most 8 sizes for shape but received 9/);
    expect(() => zeros([2]).reshape([1, 1, 1, 1, 1, 1, 1, 1, 2])).toThrow(/at most 8 sizes for shape but received 9/);
  });
  it('rejects bad dtypes, data and devices', () => {
    expect(() => zeros([2], { dtype: 'f64' as never })).toThrow(/Expected one of f32, f16, bf16, i8, i32 for opts.dtype but received 'f64'/);
    expect(() => tensor(new Uint16Array(2), [2])).toThrow(/f16 or bf16/);
    expect(() => tensor(['a'] as unknown as number[], [1])).toThrow(/data\[0\]/);
    expect(() => tensor([1.5], [1], { dtype: 'i32' })).toThrow(/integers/);
    expect(() => zeros([2], { device: 'tpu:0' })).toThrow(/Unknown or unavailable device 'tpu:0' for opts.device; available: cpu/);
    expect(() => full([2], 'x' as unknown as number)).toThrow(TypeError);
  });
  it('rejects a bad reshape', () => {
    const t = zeros([2, 3]);
    expect(() => t.reshape([4, 2])).toThrow(/6 elements/);
    expect(() => t.reshape([-1, -1])).toThrow(/at most one -1/);
    expect(() => t.reshape([4, -1])).toThrow(/Cannot infer/);
  });
  it('native layer re-validates when TS is bypassed', () => {
    const n = nativeForTests();
    expect(() => n.fromBuffer(new Float32Array(2), 'f32', [3], 'f32', 'cpu')).toThrow(/Expected 3 elements/);
    expect(() => n.full([-1], 'f32', 'cpu', 0)).toThrow(RangeError);
    expect(() => n.full(new Array(9).fill(1), 'f32', 'cpu', 0)).toThrow(/Expected at most 8 sizes for shape but received 9/);
    expect(() => n.binary('add', {} as never, {} as never)).toThrow(/Expected a Tensor for a/);
    expect(() => n.matmul(zeros([2, 3]).handle, zeros([4, 5]).handle, null)).toThrow(/Expected w of shape \[N, 3\]/);
    expect(() => n.full([2], 'f32', 'nope', 0)).toThrow(/Unknown or unavailable device 'nope'/);
  });
});

describe('op argument errors', () => {
  const x = zeros([2, 3]);
  it('matmul', () => {
    expect(() => matmul(x, zeros([4, 5]))).toThrow(/Expected w of shape \[N, 3\] to match x \[2, 3\] but received \[4, 5\]/);
    expect(() => matmul(x, zeros([4, 3], { dtype: 'f16' }))).toThrow(/Expected w to have the dtype of x \(f32\) but received f16/);
    expect(() => matmul(zeros([2, 3, 1]), zeros([4, 3]))).toThrow(/Expected x of rank 2/);
    expect(() => matmul(x, zeros([4, 3]), { bias: zeros([5]) })).toThrow(/Expected opts.bias of shape \[4\] but received \[5\]/);
    expect(() => matmul(zeros([2, 3], { dtype: 'i32' }), zeros([4, 3], { dtype: 'i32' }))).toThrow(/Expected dtype f32\|f16\|bf16 for x but received i32/);
    expect(() => matmul(x, null as never)).toThrow(/Expected a Tensor for w but received null/);
    const d = zeros([4, 3]);
    d.dispose();
    expect(() => matmul(x, d)).toThrow(/Tensor w has been disposed/);
  });
  it('small ops', () => {
    expect(() => add(x, zeros([2]))).toThrow(/Expected b's shape \[2\] to equal a's shape \[2, 3\] or a trailing part of it/);
    expect(() => mul(x, zeros([3], { dtype: 'bf16' }))).toThrow(/dtype/);
    expect(() => rmsNorm(x, zeros([4]))).toThrow(/Expected weight of shape \[3\]/);
    expect(() => rmsNorm(x, zeros([3]), Number.NaN)).toThrow(/Expected a finite number for eps but received NaN/);
    expect(() => rmsNorm(x, zeros([3]), -1)).toThrow(/Expected eps in \[0, inf\] but received -1/);
    expect(() => siluMul(x, zeros([3, 2]))).toThrow(/Expected up of shape \[2, 3\] but received \[3, 2\]/);
    expect(() => embedding(x, zeros([2]))).toThrow(/Expected dtype i32 for ids but received f32/);
    expect(() => embedding(zeros([3]), zeros([2], { dtype: 'i32' }))).toThrow(/Expected table of rank 2/);
    expect(() => softmax(zeros([2], { dtype: 'i8' }))).toThrow(/for x but received i8/);
    expect(() => argmax(zeros([2, 0]))).toThrow(/non-empty last dim/);
  });
});

describe.each(DEVICES)('queued errors on %s', (device) => {
  it('an out-of-range embedding id rejects at the next sync point and the device keeps working', async () => {
    const out = embedding(zeros([4, 2], { device }), tensor([1, 4], [2], { dtype: 'i32', device }));
    const err = await out.toArray().then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/embedding/);
    expect(err!.message).toMatch(/\b4\b/);
    await synchronize(device);
    expect(Array.from(await add(tensor([1], [1], { device }), tensor([2], [1], { device })).toArray())).toEqual([3]);
  });

  it('device-side checks surface at the next sync in launch order, even when another tensor is read', async () => {
    // Two bad ops, then a good one whose result is downloaded: the download rejects with
    // the first bad op's error (its bad id and index), and the device goes on afterwards.
    const table = tensor(Float32Array.from({ length: 8 }, (_, i) => i + 1), [4, 2], { device });
    embedding(table, tensor([0, 2, 9], [3], { dtype: 'i32', device }));
    embedding(table, tensor([-3], [1], { dtype: 'i32', device }));
    const good = add(tensor([1], [1], { device }), tensor([2], [1], { device }));
    await expect(good.toArray()).rejects.toThrow(/embedding: expected ids in \[0, 4\) but ids\[2\] = 9/);
    await synchronize(device);
    expect(Array.from(await embedding(table, tensor([3], [1], { dtype: 'i32', device })).toArray())).toEqual([7, 8]);
  });

  it('every device-side check reports through synchronize(): non-finite weights, 2:4 groups, rope positions', async () => {
    const w = tensor(Float32Array.from({ length: 16 }, (_, i) => (i === 9 ? Number.NaN : i + 1)), [2, 8], { device });
    int8.quantizeWeight(w);
    await expect(synchronize(device)).rejects.toThrow(/int8.quantizeWeight: expected finite values in w but (row 1|it holds 1 NaN)/);
    const dense = new Float32Array(16);
    dense.set([1, 2, 3], 12);
    await expect(sparse24.compress(tensor(dense, [2, 8], { device }))).rejects.toThrow(/row 1 group 1 \(columns 4\.\.7\) has 3/);
    const q = tensor(Float32Array.from({ length: 8 }, (_, i) => i + 1), [1, 1, 8], { device });
    rope(q, null, tensor([-2], [1], { dtype: 'i32', device }));
    await expect(synchronize(device)).rejects.toThrow(/rope: expected non-negative positions but positions\[0\] = -2/);
    await synchronize(device);
  });
});
