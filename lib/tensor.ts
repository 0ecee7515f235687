// Tensor handles: shape/dtype/device kept in JS, storage in native memory. Every op
// enqueues and returns at once; only toArray() (and synchronize()) wait.
import { dtypeSize, type DType } from './dtype.js';
import { resolveDevice } from './device.js';
import { native } from './native.js';
import type { NativeTensor } from './native-types.js';
import { assertDType, assertOptions, assertShape, assertTensor, describe } from './validate.js';

export type TensorData = Float32Array | Float64Array | Int8Array | Int32Array | Uint16Array | number[];

export interface TensorOptions {
  /** Storage dtype (default: f32 for float data and number[], i8/i32 for Int8Array/Int32Array). */
  dtype?: DType;
  /** Device name ('cpu', 'simt', 'cuda:0', 'auto'); default 'cpu'. */
  device?: string;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: string;
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal — use tensor(), zeros(), full() or an op. */
  constructor(handle: NativeTensor, shape: readonly number[], dtype: DType, device: string) {
    this.handle = handle;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  // Mirrors the handle's state (only dispose() below releases it) without a native call:
  // every op checks its inputs, and the call cost ~150 ns a check.
  private released = false;

  get disposed(): boolean {
    return this.released;
  }

  /** Bytes of device storage (numel × dtype size). */
  get nbytes(): number {
    return this.numel * dtypeSize(this.dtype);
  }

  /** Waits for queued work, then copies the data out. f16/bf16 come back as Float32Array. */
  async toArray(): Promise<Float32Array | Int8Array | Int32Array> {
    assertTensor(this, 'this');
    const buf = await native().toArray(this.handle);
    if (this.dtype === 'i8') return new Int8Array(buf);
    if (this.dtype === 'i32') return new Int32Array(buf);
    return new Float32Array(buf);
  }

  /** A copy on another device. */
  to(device: string): Tensor {
    assertTensor(this, 'this');
    const d = resolveDevice(device);
    return new Tensor(native().to(this.handle, d), this.shape, this.dtype, d);
  }

  /** A copy converted to `dtype` (round to nearest even; float to int saturates). */
  cast(dtype: DType): Tensor {
    assertTensor(this, 'this');
    assertDType(dtype, 'dtype');
    return new Tensor(native().cast(this.handle, dtype), this.shape, dtype, this.device);
  }

  /** Same storage, new shape (one dim may be -1). */
  reshape(shape: readonly number[]): Tensor {
    assertTensor(this, 'this');
    if (!Array.isArray(shape)) throw new TypeError(`Expected an array of sizes for shape but received ${describe(shape)}`);
    const s = [...shape];
    const free = s.indexOf(-1);
    if (free >= 0) {
      if (s.indexOf(-1, free + 1) >= 0) throw new RangeError(`Expected at most one -1 in shape but received [${s.join(', ')}]`);
      const rest = s.reduce((a, b, i) => (i === free ? a : a * b), 1);
      if (rest === 0 || this.numel % rest !== 0)
        throw new RangeError(`Cannot infer the -1 in shape [${s.join(', ')}] for ${this.numel} elements`);
      s[free] = this.numel / rest;
    }
    assertShape(s, 'shape');
    const n = s.reduce((a, b) => a * b, 1);
    if (n !== this.numel)
      throw new RangeError(
        `Expected a shape with ${this.numel} elements to reshape [${this.shape.join(', ')}] but received [${s.join(', ')}] (${n} elements)`,
      );
    return new Tensor(native().reshape(this.handle, s), s, this.dtype, this.device);
  }

  /** Releases this handle's reference to the storage (queued work keeps its own). */
  dispose(): void {
    this.handle.dispose();
    this.released = true;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

/** @internal wraps a native handle returned by an op. */
export function wrap(handle: NativeTensor, shape: readonly number[], dtype: DType, device: string): Tensor {
  return new Tensor(handle, shape, dtype, device);
}

function defaultDType(data: TensorData): DType {
  if (data instanceof Int8Array) return 'i8';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Uint16Array)
    throw new TypeError('Expected opts.dtype f16 or bf16 for a Uint16Array of raw half-precision bits');
  return 'f32';
}

/**
 * A tensor from data. Float data converts to the requested float dtype on the device;
 * a Uint16Array is taken as raw f16/bf16 bits of the requested dtype.
 * @example tensor([1, 2, 3, 4], [2, 2], { dtype: 'f16' })
 */
export function tensor(data: TensorData, shape: readonly number[], opts: TensorOptions = {}): Tensor {
  assertOptions(opts, 'opts');
  assertShape(shape, 'shape');
  const dtype = opts.dtype ?? defaultDType(data);
  assertDType(dtype, 'opts.dtype');
  const device = resolveDevice(opts.device ?? 'cpu', 'opts.device');
  let src: Float32Array | Int8Array | Int32Array | Uint16Array;
  let srcDtype: DType;
  if (Array.isArray(data)) {
    data.forEach((v, i) => {
      if (typeof v !== 'number') throw new TypeError(`Expected numbers in data but data[${i}] is ${describe(v)}`);
    });
    if (dtype === 'i32' || dtype === 'i8') {
      data.forEach((v, i) => {
        if (!Number.isInteger(v)) throw new RangeError(`Expected integers in data for dtype ${dtype} but data[${i}] is ${v}`);
      });
      src = Int32Array.from(data);
      srcDtype = 'i32';
    } else {
      src = Float32Array.from(data);
      srcDtype = 'f32';
    }
  } else if (data instanceof Float64Array) {
    src = Float32Array.from(data);
    srcDtype = 'f32';
  } else if (data instanceof Float32Array) {
    src = data;
    srcDtype = 'f32';
  } else if (data instanceof Int8Array) {
    src = data;
    srcDtype = 'i8';
  } else if (data instanceof Int32Array) {
    src = data;
    srcDtype = 'i32';
  } else if (data instanceof Uint16Array) {
    if (dtype !== 'f16' && dtype !== 'bf16')
      throw new TypeError(`Expected opts.dtype f16 or bf16 for a Uint16Array of raw bits but received ${dtype}`);
    src = data;
    srcDtype = dtype;
  } else {
    throw new TypeError(`Expected a Float32Array, Float64Array, Int8Array, Int32Array, Uint16Array or number[] for data but received ${describe(data)}`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (src.length !== n)
    throw new RangeError(`Expected ${n} elements for shape [${shape.join(', ')}] but data has ${src.length}`);
  return new Tensor(native().fromBuffer(src, srcDtype, [...shape], dtype, device), shape, dtype, device);
}

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  assertOptions(opts, 'opts');
  assertShape(shape, 'shape');
  if (typeof value !== 'number') throw new TypeError(`Expected a number for value but received ${describe(value)}`);
  const dtype = opts.dtype ?? 'f32';
  assertDType(dtype, 'opts.dtype');
  const device = resolveDevice(opts.device ?? 'cpu', 'opts.device');
  return new Tensor(native().full([...shape], dtype, device, value), shape, dtype, device);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}
