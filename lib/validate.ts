// Argument checks shared by every public function. Messages name the argument, the
// expectation and the actual value ("Expected ... for x but received ...").
import { DTYPES, isDType, type DType } from './dtype.js';
import { Tensor } from './tensor.js';

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (v instanceof Tensor) return `Tensor(${v.dtype}, [${v.shape.join(', ')}], ${v.device})`;
  if (Array.isArray(v)) return `array of length ${v.length}`;
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return String(v);
}

export function assertTensor(v: unknown, name: string): asserts v is Tensor {
  if (!(v instanceof Tensor)) throw new TypeError(`Expected a Tensor for ${name} but received ${describe(v)}`);
  if (v.disposed) throw new Error(`Tensor ${name} has been disposed`);
}

export function assertDType(v: unknown, name: string, allowed: readonly DType[] = DTYPES): asserts v is DType {
  if (!isDType(v) || !allowed.includes(v))
    throw new TypeError(`Expected one of ${allowed.join(', ')} for ${name} but received ${describe(v)}`);
}

export function assertTensorDType(t: Tensor, name: string, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype))
    throw new TypeError(`Expected dtype ${allowed.join('|')} for ${name} but received ${t.dtype}`);
}

export function assertRank(t: Tensor, name: string, rank: number, dims = ''): void {
  if (t.shape.length !== rank)
    throw new RangeError(`Expected ${name} of rank ${rank}${dims ? ` ${dims}` : ''} but received shape [${t.shape.join(', ')}]`);
}

export function assertSameDevice(a: Tensor, an: string, b: Tensor, bn: string): void {
  if (a.device !== b.device)
    throw new Error(`Expected ${an} and ${bn} on the same device but ${an} is on ${a.device} and ${bn} is on ${b.device}`);
}

export function assertSameDType(a: Tensor, an: string, b: Tensor, bn: string): void {
  if (a.dtype !== b.dtype)
    throw new TypeError(`Expected ${bn} to have the dtype of ${an} (${a.dtype}) but received ${b.dtype}`);
}

/** The most dims a tensor has (the native Shape holds them inline). */
export const MAX_RANK = 8;

export function assertShape(v: unknown, name: string): asserts v is number[] {
  if (!Array.isArray(v)) throw new TypeError(`Expected an array of sizes for ${name} but received ${describe(v)}`);
  if (v.length > MAX_RANK) throw new RangeError(`Expected at most ${MAX_RANK} sizes for ${name} but received ${v.length}`);
  v.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
      throw new RangeError(`Expected non-negative integer sizes for ${name} but ${name}[${i}] is ${describe(d)}`);
  });
  let bytes = 1;
  for (const d of v) bytes *= d;
  if (bytes * 4 > Number.MAX_SAFE_INTEGER)
    throw new RangeError(`Expected a tensor size that fits in memory but ${name} [${v.join(', ')}] overflows`);
}

export function assertFiniteNumber(v: unknown, name: string, { min, max }: { min?: number; max?: number } = {}): asserts v is number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new TypeError(`Expected a finite number for ${name} but received ${describe(v)}`);
  if ((min !== undefined && v < min) || (max !== undefined && v > max))
    throw new RangeError(`Expected ${name} in [${min ?? '-inf'}, ${max ?? 'inf'}] but received ${v}`);
}

export function assertOptions(v: unknown, name: string): asserts v is Record<string, unknown> | undefined {
  if (v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v)))
    throw new TypeError(`Expected an options object for ${name} but received ${describe(v)}`);
}

/** Checks an optional bias [N] against x (same device and dtype) — shared by every linear op. */
export function assertBias(bias: unknown, x: Tensor, N: number, name = 'opts.bias'): asserts bias is Tensor | undefined {
  if (bias === undefined) return;
  assertTensor(bias, name);
  assertSameDevice(x, 'x', bias, name);
  assertSameDType(x, 'x', bias, name);
  if (bias.shape.length !== 1 || bias.shape[0] !== N)
    throw new RangeError(`Expected ${name} of shape [${N}] but received [${bias.shape.join(', ')}]`);
}
