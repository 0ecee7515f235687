// Loads the native addon: a local build (build/Release) first, then a prebuilt
// binary from prebuilds/<platform>-<arch>/ — node-gyp-build's search order.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeAddon } from './native-types.js';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'llm-kernels') return dir;
      } catch {
        // keep walking up
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('llm-kernels: cannot find the package root (package.json) to load the addon');
    dir = up;
  }
}

let cached: NativeAddon | undefined;

/** The loaded addon (loaded on first use). */
export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const load = require('node-gyp-build') as (dir: string) => NativeAddon;
  const root = packageRoot();
  try {
    cached = load(root);
  } catch (e) {
    throw new Error(
      `llm-kernels: no native binary could be loaded from ${root} (build/Release or prebuilds/). ` +
        `Run \`npm rebuild llm-kernels\` to build it from source. Cause: ${(e as Error).message}`,
    );
  }
  return cached;
}
