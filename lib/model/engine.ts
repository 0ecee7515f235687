// Continuous batching: every generate() call becomes a sequence in one shared loop.
// Each step runs ONE forward pass carrying every active sequence's next token plus
// prefill chunks of new prompts; requests join between steps, aborted ones leave at
// once and return their KV pages.
import type { ChatMessage } from '../loaders/tokenizer.js';
import { CacheFullError } from './kv-cache.js';
import type { LlamaModel } from './llama.js';
import { Sampler, validateSampling, type SamplingOptions } from './sampler.js';

export interface GenerateOptions extends SamplingOptions {
  /** tokens to generate at most (default 128) */
  maxTokens?: number;
  /** stop strings: generation ends before the first occurrence */
  stop?: string[];
  signal?: AbortSignal;
}

export type Prompt = string | number[] | ChatMessage[];

export interface GeneratedToken {
  token: number;
  /** the text this token completes (multi-byte characters are held back until whole) */
  text: string;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Completion {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number; prefillMs: number; decodeMs: number };
}

interface Sequence {
  id: number;
  prompt: number[];
  prefilled: number;
  generated: number[];
  sampler: Sampler;
  opts: GenerateOptions;
  maxTokens: number;
  textSoFar: string;
  emitted: number;
  detok: IncrementalText;
  queue: GeneratedToken[];
  wake?: () => void;
  finish?: FinishReason;
  error?: Error;
  started: number;
  firstToken?: number;
}

const PREFILL_CHUNK = 256;

/**
 * Incremental detokenization in O(1) per token: decodes only a window of the newest
 * tokens plus a few before them as left context (so decoders that strip or merge at a
 * sequence start, e.g. SentencePiece's leading space, see the same neighbours as in
 * the full text), and emits the window's text beyond what its context part decodes
 * to. A trailing U+FFFD (a multi-byte character whose remaining bytes are still to
 * come) is held back until the next token completes it.
 */
export class IncrementalText {
  private readonly ids: number[] = [];
  private stable = '';
  /** ids[prefix, read) is the left context; ids[read, …) is not yet emitted */
  private prefix = 0;
  private read = 0;

  constructor(private readonly decode: (ids: number[]) => string) {}

  get text(): string {
    return this.stable;
  }

  /** Adds a token; returns the newly final text. */
  push(token: number): string {
    this.ids.push(token);
    const before = this.read > this.prefix ? this.decode(this.ids.slice(this.prefix, this.read)) : '';
    const now = this.decode(this.ids.slice(this.prefix));
    if (now.endsWith('\uFFFD') || now.length <= before.length || !now.startsWith(before)) return '';
    const delta = now.slice(before.length);
    this.stable += delta;
    // The emitted tokens become the next window's context (at most 4 of them).
    this.read = this.ids.length;
    this.prefix = Math.max(this.prefix, this.read - 4);
    return delta;
  }
}

export class Engine {
  private readonly active = new Map<number, Sequence>();
  private nextId = 1;
  private running = false;

  constructor(private readonly model: LlamaModel) {}

  encodePrompt(prompt: Prompt): number[] {
    const tok = this.model.tokenizer;
    if (typeof prompt === 'string') return tok.encode(prompt);
    if (Array.isArray(prompt) && prompt.every((t) => typeof t === 'number')) return [...(prompt as number[])];
    if (Array.isArray(prompt) && prompt.every((m) => m && typeof m === 'object' && typeof (m as ChatMessage).content === 'string'))
      return tok.encode(tok.applyChatTemplate(prompt as ChatMessage[]), false);
    throw new TypeError('Expected a prompt string, an array of token ids or an array of chat messages {role, content}');
  }

  async *generate(prompt: Prompt, opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken, Completion> {
    if (this.model.isDisposed) throw new Error('generate() on a disposed model');
    validateSampling(opts);
    const maxTokens = opts.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`Expected a positive integer for maxTokens but received ${String(maxTokens)}`);
    if (opts.stop !== undefined && (!Array.isArray(opts.stop) || opts.stop.some((s) => typeof s !== 'string' || !s)))
      throw new TypeError('Expected stop to be an array of non-empty strings');
    const ids = this.encodePrompt(prompt);
    const vocab = this.model.config.vocabSize;
    if (!ids.length) throw new RangeError('Expected a non-empty prompt');
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new RangeError(`Expected prompt token ids in [0, ${vocab}) but received ${String(id)}`);
    if (ids.length >= this.model.contextSize)
      throw new RangeError(`The prompt has ${ids.length} tokens but the context size is ${this.model.contextSize}`);
    const seq: Sequence = {
      id: this.nextId++, prompt: ids, prefilled: 0, generated: [], sampler: new Sampler(opts), opts, maxTokens,
      textSoFar: '', emitted: 0, queue: [], started: performance.now(),
      detok: new IncrementalText((t) => this.model.tokenizer.decode(t)),
    };
    this.active.set(seq.id, seq);
    const onAbort = () => this.finish(seq, 'abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) this.finish(seq, 'abort');
    void this.loop();
    try {
      for (;;) {
        while (seq.queue.length) yield seq.queue.shift()!;
        if (seq.error) throw seq.error;
        if (seq.finish) break;
        await new Promise<void>((r) => (seq.wake = r));
      }
      while (seq.queue.length) yield seq.queue.shift()!;
      const now = performance.now();
      return {
        text: seq.textSoFar,
        tokens: seq.generated,
        finishReason: seq.finish!,
        usage: {
          promptTokens: ids.length,
          completionTokens: seq.generated.length,
          prefillMs: (seq.firstToken ?? now) - seq.started,
          decodeMs: now - (seq.firstToken ?? now),
        },
      };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!seq.finish) this.finish(seq, 'abort');
    }
  }

  private finish(seq: Sequence, why: FinishReason, error?: Error): void {
    if (seq.finish) return;
    seq.finish = why;
    seq.error = error;
    this.active.delete(seq.id);
    this.model.cache.release(seq.id);
    seq.wake?.();
  }

  private emit(seq: Sequence, token: number): void {
    seq.generated.push(token);
    seq.detok.push(token);
    let out = seq.detok.text;
    let stopped = false;
    for (const s of seq.opts.stop ?? []) {
      const at = out.indexOf(s, Math.max(0, seq.emitted - s.length));
      if (at >= 0) {
        out = out.slice(0, at);
        stopped = true;
      }
    }
    if (out.length > seq.emitted) {
      seq.queue.push({ token, text: out.slice(seq.emitted) });
      seq.emitted = out.length;
    } else {
      seq.queue.push({ token, text: '' });
    }
    seq.textSoFar = out;
    if (stopped || this.model.config.eosTokenIds.includes(token)) this.finish(seq, 'stop');
    else if (seq.generated.length >= seq.maxTokens) this.finish(seq, 'length');
    else if (seq.prompt.length + seq.generated.length >= this.model.contextSize) this.finish(seq, 'length');
    seq.wake?.();
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.active.size) {
        const batch: { seq: Sequence; tokens: number[]; last: boolean }[] = [];
        for (const seq of this.active.values()) {
          if (seq.prefilled < seq.prompt.length) {
            const n = Math.min(PREFILL_CHUNK, seq.prompt.length - seq.prefilled);
            batch.push({ seq, tokens: seq.prompt.slice(seq.prefilled, seq.prefilled + n), last: seq.prefilled + n === seq.prompt.length });
          } else {
            batch.push({ seq, tokens: [seq.generated[seq.generated.length - 1]], last: true });
          }
        }
        // A sequence that cannot get KV pages ends with 'length'; others go on.
        const runnable = batch.filter((b) => {
          if (this.model.cache.canGrow(b.seq.id, b.tokens.length)) return true;
          this.finish(b.seq, 'length');
          return false;
        });
        if (!runnable.length) continue;
        let logits: Float32Array;
        try {
          logits = await this.model.forward(runnable.map((b) => ({ seq: b.seq.id, tokens: b.tokens })));
        } catch (e) {
          for (const b of runnable) this.finish(b.seq, e instanceof CacheFullError ? 'length' : 'abort', e instanceof CacheFullError ? undefined : (e as Error));
          continue;
        }
        const V = this.model.config.vocabSize;
        runnable.forEach((b, i) => {
          const seq = b.seq;
          if (seq.finish) return; // aborted while the step ran: its pages are already back
          if (seq.prefilled < seq.prompt.length) seq.prefilled += b.tokens.length;
          if (!b.last) return;
          seq.firstToken ??= performance.now();
          const row = logits.slice(i * V, (i + 1) * V);
          this.emit(seq, seq.sampler.sample(row, [...seq.prompt, ...seq.generated]));
        });
      }
    } finally {
      this.running = false;
    }
  }
}
