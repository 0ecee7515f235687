// The paged KV cache shared by all sequences of a model: per layer, kCache and vCache
// tensors [numPages, pageSize, Hkv, D] (the layout ropeAndCache writes and paged
// attention reads). Pages are taken as a sequence grows and returned when it ends, is
// aborted or disposed; a sequence that needs a page when none is free gets a clear
// error (its caller turns it into finishReason 'length'), never another's pages.
import { full, type Tensor } from '../tensor.js';
import type { DType } from '../dtype.js';

export class CacheFullError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'CacheFullError';
  }
}

export class PagedKvCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  private readonly free: number[] = [];
  private readonly pagesOf = new Map<number, number[]>();
  private readonly lengthOf = new Map<number, number>();

  constructor(
    readonly layers: number,
    readonly numPages: number,
    readonly pageSize: number,
    readonly kvHeads: number,
    readonly headDim: number,
    dtype: DType,
    device: string,
  ) {
    for (let l = 0; l < layers; l++) {
      this.k.push(full([numPages, pageSize, kvHeads, headDim], 0, { dtype, device }));
      this.v.push(full([numPages, pageSize, kvHeads, headDim], 0, { dtype, device }));
    }
    // Pop from the end: page 0 is handed out first.
    for (let p = numPages - 1; p >= 0; p--) this.free.push(p);
  }

  get freePages(): number {
    return this.free.length;
  }

  length(seq: number): number {
    return this.lengthOf.get(seq) ?? 0;
  }

  pages(seq: number): readonly number[] {
    return this.pagesOf.get(seq) ?? [];
  }

  /** Whether `n` more tokens fit for `seq` given the free pages. */
  canGrow(seq: number, n: number): boolean {
    const have = this.pages(seq).length * this.pageSize;
    const need = Math.ceil(Math.max(0, this.length(seq) + n - have) / this.pageSize);
    return need <= this.free.length;
  }

  /** Reserves room for `n` more tokens of `seq`; returns their flat cache slots. */
  append(seq: number, n: number): Int32Array {
    if (!this.canGrow(seq, n))
      throw new CacheFullError(
        `KV cache full: sequence ${seq} needs ${n} more token slots but only ${this.free.length} of ${this.numPages} pages (${this.pageSize} tokens each) are free`,
      );
    const pages = this.pagesOf.get(seq) ?? [];
    this.pagesOf.set(seq, pages);
    const start = this.length(seq);
    const slots = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const pos = start + i;
      const pi = Math.floor(pos / this.pageSize);
      if (pi === pages.length) pages.push(this.free.pop()!);
      slots[i] = pages[pi] * this.pageSize + (pos % this.pageSize);
    }
    this.lengthOf.set(seq, start + n);
    return slots;
  }

  /** Returns the pages of `seq` to the pool. */
  release(seq: number): void {
    const pages = this.pagesOf.get(seq);
    if (pages) for (let i = pages.length - 1; i >= 0; i--) this.free.push(pages[i]);
    this.pagesOf.delete(seq);
    this.lengthOf.delete(seq);
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}
