#!/usr/bin/env node
// npm run check:cuda — static checks of every CUDA kernel without a GPU:
//   * ptxas resource report per kernel for sm_80, sm_86, sm_89, sm_90; any register
//     spill or local-memory use fails the check;
//   * the PTX of each .cu contains the instruction forms it declares on a line
//     `// check:cuda expects: <substring> <substring> ...` (e.g. mma.sp::ordered_metadata);
//   * prints a table kernel × arch: registers, shared memory, stack, spills.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ARCHS = ['80', '86', '89', '90'];
const PARALLEL = 2; // two cores
const nvcc = process.env.NVCC ?? 'nvcc';
const includes = ['native', 'native/include', 'native/cuda'].flatMap((d) => ['-I', join(root, d)]);
const common = ['-std=c++20', '--expt-relaxed-constexpr', ...includes];
const cuDir = join(root, 'native/cuda');
const files = readdirSync(cuDir).filter((f) => f.endsWith('.cu')).sort();
const tmp = mkdtempSync(join(tmpdir(), 'llmk-check-'));
const t0 = Date.now();

async function demangle(names) {
  try {
    const { stdout } = await run('c++filt', names);
    return stdout.trim().split('\n');
  } catch {
    return names;
  }
}

// One nvcc run: returns [{ kernel, regs, smem, stack, spillStores, spillLoads, lmem }] and problems.
async function resources(file, arch) {
  const args = ['-arch=sm_' + arch, '-cubin', '--resource-usage', '-Xptxas', '-v,-warn-spills,-warn-lmem-usage', ...common, join(cuDir, file), '-o', join(tmp, `${file}.${arch}.cubin`)];
  const { stderr, stdout } = await run(nvcc, args, { maxBuffer: 64 << 20 });
  const out = stderr + stdout;
  const rows = [];
  let cur = null;
  for (const line of out.split('\n')) {
    let m;
    if ((m = line.match(/Compiling entry function '([^']+)' for 'sm_(\d+)'/))) {
      cur = { mangled: m[1], arch, regs: 0, smem: 0, stack: 0, spillStores: 0, spillLoads: 0 };
      rows.push(cur);
    } else if (cur && (m = line.match(/(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/))) {
      cur.stack = +m[1];
      cur.spillStores = +m[2];
      cur.spillLoads = +m[3];
    } else if (cur && (m = line.match(/Used (\d+) registers/))) {
      cur.regs = +m[1];
      const s = line.match(/(\d+) bytes smem/);
      cur.smem = s ? +s[1] : 0;
    }
  }
  const problems = out.split('\n').filter((l) => /warning.*(spill|Local memory)|error/i.test(l));
  return { rows, problems };
}

async function ptxCheck(file) {
  const src = readFileSync(join(cuDir, file), 'utf8');
  const m = src.match(/\/\/ check:cuda expects:(.*)/);
  const expects = m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
  if (!expects.length || expects[0] === 'none') return { file, expects, missing: [] };
  const out = join(tmp, `${file}.ptx`);
  await run(nvcc, ['-arch=sm_80', '-ptx', ...common, join(cuDir, file), '-o', out], { maxBuffer: 64 << 20 });
  const ptx = readFileSync(out, 'utf8');
  return { file, expects, missing: expects.filter((e) => !ptx.includes(e)) };
}

const jobs = [];
for (const f of files) {
  for (const a of ARCHS) jobs.push(() => resources(f, a).then((r) => ({ kind: 'res', file: f, ...r })));
  jobs.push(() => ptxCheck(f).then((r) => ({ kind: 'ptx', ...r })));
}
const results = [];
let next = 0;
await Promise.all(
  Array.from({ length: PARALLEL }, async () => {
    while (next < jobs.length) {
      const j = jobs[next++];
      try {
        results.push(await j());
      } catch (e) {
        results.push({ kind: 'fail', error: (e.stderr || e.message || String(e)).toString() });
      }
    }
  }),
);
rmSync(tmp, { recursive: true, force: true });

let failed = false;
for (const r of results.filter((r) => r.kind === 'fail')) {
  failed = true;
  console.error(`nvcc failed:\n${r.error}`);
}
const rows = results.filter((r) => r.kind === 'res').flatMap((r) => r.rows.map((x) => ({ ...x, file: r.file })));
const names = await demangle([...new Set(rows.map((r) => r.mangled))]);
const nice = new Map([...new Set(rows.map((r) => r.mangled))].map((m, i) => [m, names[i].replace(/llmk::(cuda|simt)::(\(anonymous namespace\)::)?/g, '').replace(/\(.*$/, '')]));
const byKernel = new Map();
for (const r of rows) {
  const key = `${r.file}  ${nice.get(r.mangled)}`;
  if (!byKernel.has(key)) byKernel.set(key, {});
  byKernel.get(key)[r.arch] = r;
}
const head = ['kernel', ...ARCHS.map((a) => `sm_${a} regs/smem/spill`)];
const lines = [...byKernel.entries()].sort().map(([k, v]) => [k, ...ARCHS.map((a) => (v[a] ? `${v[a].regs}/${v[a].smem}/${v[a].spillStores + v[a].spillLoads + v[a].stack}` : '-'))]);
const width = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
console.log([head, ...lines].map((l) => l.map((c, i) => c.padEnd(width[i])).join('  ')).join('\n'));

for (const r of rows)
  if (r.spillStores || r.spillLoads || r.stack) {
    failed = true;
    console.error(`FAIL ${r.file} ${nice.get(r.mangled)} sm_${r.arch}: ${r.stack} B stack, ${r.spillStores}/${r.spillLoads} B spill stores/loads`);
  }
for (const r of results.filter((r) => r.kind === 'res'))
  for (const p of r.problems) {
    failed = true;
    console.error(`FAIL ${r.file}: ${p.trim()}`);
  }
for (const r of results.filter((r) => r.kind === 'ptx')) {
  if (!r.expects.length) {
    failed = true;
    console.error(`FAIL ${r.file}: no '// check:cuda expects:' line`);
  } else if (r.expects[0] === 'none') {
    console.log(`ok   ${r.file}: declares no tensor-core forms`);
  } else if (r.missing.length) {
    failed = true;
    console.error(`FAIL ${r.file}: PTX lacks ${r.missing.join(', ')}`);
  } else {
    console.log(`ok   ${r.file}: PTX has ${r.expects.join(', ')}`);
  }
}
console.log(`${rows.length} kernel compilations, ${files.length} files × ${ARCHS.length} archs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (failed) {
  console.error('check:cuda FAILED');
  process.exit(1);
}
console.log('check:cuda passed: 0 spills, 0 local memory, expected tensor-core forms present');
