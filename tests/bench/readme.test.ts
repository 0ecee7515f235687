// The README's measured section is generated from bench/results: one table per CPU
// results file (cpu.json, then cpu-<name>.json), the chart only under the first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { performanceSection } from '../../bench/readme.js';

const dir = mkdtempSync(join(tmpdir(), 'llmk-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (isa: string, fp32: number, median: number) => ({
  machine: { cpu: 'Test CPU', isa, threads: 2, node: 'v20.0.0', date: '2026-01-02T00:00:00.000Z' },
  peaks: { fp32Gflops: fp32, int8Gops: 2 * fp32, readGBs: 30.5 },
  results: [{ name: 'attention prefill f16 S=512', medianMs: median, rate: 123.4, unit: 'GFLOP/s', pctOfPeak: 61.7 }],
});

describe('bench/readme performanceSection', () => {
  it('renders cpu.json and every cpu-<name>.json, each with its own machine line', () => {
    writeFileSync(join(dir, 'cpu.json'), JSON.stringify(run('avx512vnni', 424, 13.85)));
    writeFileSync(join(dir, 'cpu-avx2.json'), JSON.stringify(run('avx2', 205, 34.17)));
    writeFileSync(join(dir, 'cpu-notes.txt'), 'not a results file');
    const text = performanceSection(dir);
    const main = text.indexOf('### Kernels (`npm run bench`)\n');
    const second = text.indexOf('### Kernels (`npm run bench`), avx2');
    expect(main).toBeGreaterThanOrEqual(0);
    expect(second).toBeGreaterThan(main);
    expect(text).toContain('Test CPU (avx512vnni, 2 threads), Node v20.0.0, 2026-01-02; measured peaks: fp32 FMA 424 GFLOP/s');
    expect(text).toContain('Test CPU (avx2, 2 threads), Node v20.0.0, 2026-01-02; measured peaks: fp32 FMA 205 GFLOP/s');
    expect(text.slice(main, second)).toContain('| attention prefill f16 S=512 | 13.85 ms | 123.4 GFLOP/s | 62% |');
    expect(text.slice(second)).toContain('| attention prefill f16 S=512 | 34.17 ms | 123.4 GFLOP/s | 62% |');
    expect(text.split('bench/results/chart.svg').length - 1).toBe(1);
    expect(text.indexOf('chart.svg')).toBeLessThan(second);
  });
});
