import { describe, expect, it } from 'vitest';
import { full, memory, synchronize, tensor, zeros } from '../../lib/index.js';
import { DEVICES, quantizeTo, randn, settleGc } from '../helpers.js';

describe.each(DEVICES)('tensors on %s', (device) => {
  it.each<['f32' | 'f16' | 'bf16']>([['f32'], ['f16'], ['bf16']])('round-trips %s data through the device', async (dtype) => {
    const data = randn(1234, 5);
    const t = tensor(data, [2, 617], { dtype, device });
    expect(t.shape).toEqual([2, 617]);
    expect(t.dtype).toBe(dtype);
    expect(t.device).toBe(device);
    expect(t.numel).toBe(1234);
    const out = await t.toArray();
    expect(out).toBeInstanceOf(Float32Array);
    expect(Array.from(out)).toEqual(Array.from(quantizeTo(data, dtype)));
  });

  it('round-trips i8 and i32', async () => {
    const i8 = Int8Array.from({ length: 300 }, (_, i) => ((i * 37) % 256) - 128);
    expect(Array.from(await tensor(i8, [300], { device }).toArray())).toEqual(Array.from(i8));
    const i32 = Int32Array.from({ length: 77 }, (_, i) => (i - 30) * 1_000_003);
    const t = tensor(i32, [7, 11], { device });
    const out = await t.toArray();
    expect(out).toBeInstanceOf(Int32Array);
    expect(Array.from(out)).toEqual(Array.from(i32));
  });

  it('takes raw f16 / bf16 bits from a Uint16Array', async () => {
    // 0x3c00 = 1.0 (f16), 0xc000 = -2.0 (f16); 0x3f80 = 1.0 (bf16), 0x4049 = 3.140625 (bf16)
    expect(Array.from(await tensor(new Uint16Array([0x3c00, 0xc000]), [2], { dtype: 'f16', device }).toArray())).toEqual([1, -2]);
    expect(Array.from(await tensor(new Uint16Array([0x3f80, 0x4049]), [2], { dtype: 'bf16', device }).toArray())).toEqual([
      1, 3.140625,
    ]);
  });

  it('zeros and full', async () => {
    expect(Array.from(await zeros([3, 2], { device }).toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(await full([5], 2.5, { dtype: 'f16', device }).toArray())).toEqual([2.5, 2.5, 2.5, 2.5, 2.5]);
    expect(Array.from(await full([2], -7, { dtype: 'i32', device }).toArray())).toEqual([-7, -7]);
  });

  it('reshape shares storage and infers -1', async () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3], { device });
    const r = t.reshape([3, -1]);
    expect(r.shape).toEqual([3, 2]);
    t.dispose(); // the reshaped handle keeps the storage alive
    expect(Array.from(await r.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('moves between devices', async () => {
    const data = randn(999, 8);
    for (const other of DEVICES) {
      const t = tensor(data, [999], { device }).to(other);
      expect(t.device).toBe(other);
      expect(Array.from(await t.to(device).toArray())).toEqual(Array.from(data));
    }
  });

  it('dispose releases memory and use after dispose throws', async () => {
    await synchronize(device);
    await settleGc();
    const before = memory();
    const t = tensor(randn(1 << 16, 9), [1 << 16], { device });
    const mid = memory();
    expect(mid.tensors).toBe(before.tensors + 1);
    expect(mid.bytes[device]).toBeGreaterThanOrEqual(before.bytes[device] + (1 << 18));
    t.dispose();
    expect(t.disposed).toBe(true);
    await synchronize(device);
    await settleGc();
    const after = memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes[device]).toBe(before.bytes[device]);
    await expect(t.toArray()).rejects.toThrow(/disposed/);
    expect(() => t.reshape([-1])).toThrow(/disposed/);
    expect(() => t.cast('f16')).toThrow(/disposed/);
  });

  it('supports `using` (Symbol.dispose)', async () => {
    await settleGc();
    const before = memory().tensors;
    {
      using t = tensor([1, 2, 3], [3], { device });
      expect(memory().tensors).toBe(before + 1);
      expect(Array.from(await t.toArray())).toEqual([1, 2, 3]);
    }
    expect(memory().tensors).toBe(before);
  });
});
