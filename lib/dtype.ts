import type { DType } from './native-types.js';

export type { DType };
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i8', 'i32'];
export const FLOAT_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

export function isDType(v: unknown): v is DType {
  return typeof v === 'string' && (DTYPES as readonly string[]).includes(v);
}

export function dtypeSize(d: DType): number {
  return d === 'f32' || d === 'i32' ? 4 : d === 'i8' ? 1 : 2;
}
