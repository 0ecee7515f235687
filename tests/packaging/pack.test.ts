// The published package works on a machine with no compiler: `npm run prebuild`,
// `npm pack`, install the tarball into an empty folder with PATH holding only `node`
// (no cc/c++/cmake/nvcc), then load it with import and require and run an op. The
// install script must pick the prebuilt binary instead of building. The install is
// --prefer-offline, not --offline: `npm ci` caches dependency tarballs but not the
// registry metadata that resolving a tarball's dependencies needs, so a clean
// machine's cache alone cannot satisfy it.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'llmk-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}:\n${out}`);
  return out;
}

// npm's own entry point, run by this node (so npm itself needs nothing on PATH).
function npmCli(): string {
  const found = (process.env.PATH ?? '').split(':').map((d) => join(d, 'npm')).find((p) => existsSync(p));
  if (!found) throw new Error('npm was not found on PATH');
  const real = realpathSync(found);
  return real.endsWith('.js') ? real : join(dirname(real), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
}

describe('npm package', () => {
  it('installs from a prebuilt binary with no compiler and works via import and require', () => {
    sh(process.execPath, [join(root, 'scripts', 'prebuild.mjs')], { cwd: root });
    const npm = npmCli();
    sh(process.execPath, [npm, 'pack', '--pack-destination', work], { cwd: root });
    const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tgz).toBeDefined();

    // A PATH with node and the shell npm runs scripts with, nothing else: any
    // attempt to compile fails loudly.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin };
    delete env.LLMK_POISON;
    const log = sh(
      process.execPath,
      [npm, 'install', '--prefer-offline', '--omit=dev', '--ignore-scripts=false', '--no-audit', '--no-fund', '--foreground-scripts', join(work, tgz!)],
      { cwd: app, env },
    );
    expect(log).toContain('using the prebuilt native binary');
    const pkg = join(app, 'node_modules', 'llm-kernels');
    expect(existsSync(join(pkg, 'build'))).toBe(false);

    const check = (x: string) =>
      `const a = tensor([1.5, -2, 3.25, 4], [2, 2]); const b = tensor([10, 0.5], [2]);` +
      `${x}(add(a, b).toArray().then((y) => { console.log(JSON.stringify(Array.from(y))); }));`;
    const esm = sh(process.execPath, ['--input-type=module', '-e', `import { tensor, add } from 'llm-kernels'; ${check('')}`], { cwd: app, env });
    const cjs = sh(process.execPath, ['-e', `const { tensor, add } = require('llm-kernels'); ${check('')}`], { cwd: app, env });
    for (const out of [esm, cjs]) expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual([11.5, -1.5, 13.25, 4.5]);

    // The CLI from the installed package: info, a one-op quick bench (the runner is
    // bundled in dist/bench), and a clear exit 2 on a bad flag.
    const cliJs = join(pkg, 'dist', 'cli', 'main.js');
    expect(sh(process.execPath, [cliJs, 'info'], { cwd: app, env })).toMatch(/cpu\s+cpu/);
    const out = join(work, 'results');
    const bench = sh(process.execPath, [cliJs, 'bench', '--quick', '--op', 'add', '--device', 'cpu', '--out', out], { cwd: app, env });
    expect(bench).toMatch(/add f32 \[64x4096\]/);
    const saved = JSON.parse(readFileSync(join(out, 'cpu.quick.json'), 'utf8')) as { results: { op: string; medianMs: number }[] };
    expect(saved.results.map((r) => r.op)).toEqual(['add']);
    expect(saved.results[0].medianMs).toBeGreaterThan(0);
    const bad = spawnSync(process.execPath, [cliJs, 'bench', '--bogus'], { cwd: app, env, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("Unknown bench option '--bogus'");
  });
});
