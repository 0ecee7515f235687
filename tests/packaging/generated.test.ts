// The FlashAttention head-dim instances (native/cuda/attention_fa_hdim*.cu) and their
// dispatcher are generated from one table (scripts/gen-attention-instances.mjs) and
// committed: the committed files must be exactly what the generator writes, and the
// check must notice a hand edit.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..', '..');
const script = join(root, 'scripts', 'gen-attention-instances.mjs');
const work = mkdtempSync(join(tmpdir(), 'llmk-gen-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const check = (dir?: string) =>
  spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8', env: { ...process.env, ...(dir ? { LLMK_CUDA_DIR: dir } : {}) } });

describe('generated CUDA attention instances', () => {
  it('the committed files are what the generator writes, one per head-dim bucket', () => {
    const r = check();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const cuda = join(root, 'native', 'cuda');
    const instances = readdirSync(cuda).filter((f) => /^attention_fa_hdim\d+\.cu$/.test(f));
    expect(instances.sort()).toEqual(['attention_fa_hdim128.cu', 'attention_fa_hdim256.cu', 'attention_fa_hdim64.cu', 'attention_fa_hdim96.cu']);
    // every instance the dispatcher names is defined in one of them
    const dispatch = readFileSync(join(cuda, 'attention_fa_dispatch.cuh'), 'utf8');
    const declared = [...dispatch.matchAll(/extern template void (launch_fa_mma<[^>]+>)/g)].map((m) => m[1]);
    const defined = instances.flatMap((f) => [...readFileSync(join(cuda, f), 'utf8').matchAll(/^template void (launch_fa_mma<[^>]+>)/gm)].map((m) => m[1]));
    expect(declared.length).toBe(8); // 4 buckets × f16, bf16
    expect(defined.sort()).toEqual(declared.sort());
  });

  it('a hand-edited or missing instance fails the check', () => {
    const dir = join(work, 'cuda');
    cpSync(join(root, 'native', 'cuda'), dir, { recursive: true });
    const f = join(dir, 'attention_fa_hdim128.cu');
    writeFileSync(f, readFileSync(f, 'utf8').replace('64, 128, 2', '32, 128, 2'));
    let r = check(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/attention_fa_hdim128\.cu is not what the generator writes/);
    rmSync(join(dir, 'attention_fa_hdim64.cu'));
    r = check(dir);
    expect(r.stderr).toMatch(/attention_fa_hdim64\.cu is missing/);
  });
});
