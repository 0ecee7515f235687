// `npm run test:gpu` — on a machine with an NVIDIA GPU: build with the CUDA backend
// (LLMK_CUDA=on), check that CUDA answers, run the whole test suite (tests run on
// every device in DEVICES, cuda:0 included), then benchmark cuda:0 and cpu into
// bench/results/. Exits non-zero with a clear message when there is no GPU.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const env = { ...process.env, LLMK_CUDA: 'on', PATH: `${process.env.PATH}:/usr/local/cuda/bin` };

function step(title, cmd, args) {
  console.log(`\n=== ${title}`);
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    console.error(`test:gpu: '${title}' failed (${r.error?.message ?? `exit ${r.status}`})`);
    process.exit(r.status || 1);
  }
  console.log(`=== ${title}: ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
}

const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
if (smi.error || smi.status !== 0 || !/GPU \d+:/.test(smi.stdout)) {
  console.error(
    'test:gpu: no NVIDIA GPU found (`nvidia-smi -L` ' +
      (smi.error ? `could not run: ${smi.error.message}` : `listed no GPU: ${(smi.stdout + smi.stderr).trim()}`) +
      '). Run this on a machine with an NVIDIA GPU and driver; use `npm test` elsewhere.',
  );
  process.exit(1);
}
console.log(smi.stdout.trim());

step('build (LLMK_CUDA=on)', process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'rebuild']);
step('cudaStatus', process.execPath, [
  '-e',
  `const s = require('./build/Release/llm_kernels.node').cudaStatus(); console.log(s);
   if (!s.available) { console.error('CUDA is compiled in but unavailable: ' + s.reason); process.exit(1); }`,
]);
step('vitest (all devices, cuda:0 included)', process.execPath, [require.resolve('vitest/vitest.mjs'), 'run']);
step('benchmarks (cuda:0, cpu)', process.execPath, [
  '--import',
  'tsx',
  join(root, 'bench', 'ops.ts'),
  '--device',
  'cuda:0,cpu',
  '--out',
  join(root, 'bench', 'results'),
]);
console.log('\ntest:gpu: all steps passed; results in bench/results/');
