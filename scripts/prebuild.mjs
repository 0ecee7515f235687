// `npm run prebuild`: builds the addon with cmake-js and installs it where
// node-gyp-build looks for prebuilt binaries, prebuilds/<platform>-<arch>/
// llm-kernels.napi[.glibc|.musl].node (Node-API, so one file serves every Node
// version). prebuildify is not used because it drives node-gyp, not CMake.
// The binary contains every backend that was built (CUDA with static cudart loads
// on machines without a driver), so one file per platform is enough.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const build = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('prebuild: cmake-js compile failed');
  process.exit(build.status ?? 1);
}

const built = join(root, 'build', 'Release', 'llm_kernels.node');
const tags = ['napi'];
if (process.platform === 'linux') {
  const glibc = process.report?.getReport().header.glibcVersionRuntime;
  tags.push(glibc ? 'glibc' : 'musl');
}
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const dest = join(dir, `llm-kernels.${tags.join('.')}.node`);
copyFileSync(built, dest);

// Check the copy loads (in a child process, so a failure cannot take this one down).
const probe = `require(${JSON.stringify(dest)}).devices()`;
const ok = spawnSync(process.execPath, ['-e', probe], { cwd: root, stdio: 'inherit' });
if (ok.status !== 0) {
  console.error(`prebuild: ${dest} does not load`);
  process.exit(1);
}
for (const f of readdirSync(dir)) console.log(`prebuild: ${join('prebuilds', `${process.platform}-${process.arch}`, f)} (${(statSync(join(dir, f)).size / 1e6).toFixed(1)} MB)`);
