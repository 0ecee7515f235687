import { describe, expect, it } from 'vitest';
import { add, tensor } from '../lib/index.js';
import { DEVICES } from './helpers.js';

describe.each(DEVICES)('smoke on %s', (device) => {
  it('adds', async () => {
    const a = tensor([1, 2, 3, 4], [2, 2], { device });
    const b = tensor([10, 20], [2], { device });
    expect(Array.from(await add(a, b).toArray())).toEqual([11, 22, 13, 24]);
  });
});
