// tokenizer.json through @huggingface/tokenizers (no hand-written BPE) and chat
// templates from tokenizer_config.json through @huggingface/jinja.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export class ModelTokenizer {
  private readonly template?: Template;

  private constructor(
    private readonly tok: Tokenizer,
    readonly config: Record<string, unknown>,
    readonly vocabSize: number,
  ) {
    const t = config.chat_template;
    if (typeof t === 'string') this.template = new Template(t);
  }

  static async load(dir: string): Promise<ModelTokenizer> {
    const read = async (name: string, required: boolean): Promise<Record<string, unknown>> => {
      const file = join(dir, name);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if (!required) return {};
        throw new Error(`Cannot read ${file}: ${(e as Error).message}`);
      }
      try {
        const v = JSON.parse(text);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
        return v;
      } catch (e) {
        throw new Error(`Malformed ${file}: ${(e as Error).message}`);
      }
    };
    const json = await read('tokenizer.json', true);
    const cfg = await read('tokenizer_config.json', false);
    const model = json.model as { vocab?: Record<string, number> } | undefined;
    if (!model || typeof model !== 'object' || !model.vocab) throw new Error(`Malformed ${join(dir, 'tokenizer.json')}: missing model.vocab`);
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json, cfg);
    } catch (e) {
      throw new Error(`Malformed ${join(dir, 'tokenizer.json')}: ${(e as Error).message}`);
    }
    const added = (json.added_tokens as { id: number }[] | undefined) ?? [];
    const maxId = Math.max(...Object.values(model.vocab), ...added.map((a) => a.id));
    return new ModelTokenizer(tok, cfg, maxId + 1);
  }

  /** Token ids of `text` (with the BOS the post-processor adds, unless addSpecialTokens is false). */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /** Text of `ids` (special tokens skipped). */
  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: true });
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token) ?? undefined;
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** Renders messages with the model's chat template (add_generation_prompt = true). */
  applyChatTemplate(messages: ChatMessage[]): string {
    if (!this.template) throw new Error('This model has no chat_template in tokenizer_config.json; pass a plain prompt');
    return this.template.render({
      messages,
      add_generation_prompt: true,
      bos_token: this.config.bos_token ?? '',
      eos_token: this.config.eos_token ?? '',
    });
  }
}
