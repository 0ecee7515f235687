// npm install hook: use a matching prebuilt binary when one loads, else build from
// source with cmake-js. (The stock `node-gyp-build` install fallback would run
// node-gyp, which does not know our CMake build.)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function prebuildLoads() {
  if (process.env.LLMK_BUILD_FROM_SOURCE) return false;
  // A git checkout (developers, CI) always builds: node-gyp-build would otherwise
  // accept a stale build/Release left from older sources. cmake-js builds
  // incrementally, so this costs seconds when nothing changed.
  if (fs.existsSync(path.join(root, '.git'))) return false;
  // A fresh child process: a binary that fails to load must not poison this one.
  const probe = `require(${JSON.stringify(require.resolve('node-gyp-build'))})(${JSON.stringify(root)})`;
  const r = spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore' });
  return r.status === 0;
}

if (prebuildLoads()) {
  console.log('llm-kernels: using the prebuilt native binary');
  process.exit(0);
}
console.log('llm-kernels: building the native addon from source (cmake-js)');
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js');
} catch {
  console.error('llm-kernels: no prebuilt binary for this platform and cmake-js is not installed');
  process.exit(1);
}
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
