import { describe, expect, it } from 'vitest';
import { SpawnHelper } from '../../src/main/monitors/helper.js';
import { directSpawns, run } from '../../src/main/monitors/util.js';

const supported = SpawnHelper.supported();
describe.skipIf(!supported)(`monitor helper shell${supported ? '' : ' — skipped: needs Linux with sh, env and timeout'}`, () => {
  it('runs tools with their environment, reports exit codes, missing tools and timeouts; one start only', async () => {
    const h = new SpawnHelper();
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C.UTF-8', KUZET_T: 'a b  c' };
      delete env.HOME;
      const ok = await h.run('sh', ['-c', 'printf "%s|%s|%s" "$LC_ALL" "$KUZET_T" "${HOME-unset}"; echo warn >&2'], { env, timeoutMs: 5000, maxBytes: 1 << 20 });
      expect(ok).toEqual({ ok: true, code: 0, stdout: 'C.UTF-8|a b  c|unset', stderr: 'warn\n' });
      const bad = await h.run('sh', ['-c', 'echo nope >&2; exit 3'], { env: process.env, timeoutMs: 5000, maxBytes: 1 << 20 });
      expect(bad).toMatchObject({ ok: false, code: 3, error: 'sh -c echo nope >&2; exit 3 failed: nope' });
      const gone = await h.run('kuzet-no-such-tool', [], { env: process.env, timeoutMs: 5000, maxBytes: 1 << 20 });
      expect(gone).toMatchObject({ ok: false, missing: true, error: 'kuzet-no-such-tool is not installed (not found on PATH)' });
      const t0 = performance.now();
      const slow = await h.run('sleep', ['5'], { env: process.env, timeoutMs: 300, maxBytes: 1 << 20 });
      expect(slow).toMatchObject({ ok: false, error: 'sleep timed out after 300 ms' });
      expect(performance.now() - t0).toBeLessThan(3000);
      const big = await h.run('head', ['-c', '5000', '/dev/zero'], { env: process.env, timeoutMs: 5000, maxBytes: 1000 });
      expect(big).toMatchObject({ ok: false, error: expect.stringMatching(/larger than 1000 bytes/) });
      // Several at once come back to the right callers.
      const many = await Promise.all([1, 2, 3, 4, 5].map((i) => h.run('sh', ['-c', `sleep 0.0${i}; echo ${i}`], { env: process.env, timeoutMs: 5000, maxBytes: 1000 })));
      expect(many!.map((r) => r!.stdout.trim())).toEqual(['1', '2', '3', '4', '5']);
      expect(h.starts).toBe(1);
      // An argument with a newline cannot be passed line by line: the caller runs it directly.
      expect(h.run('echo', ['a\nb'], { env: process.env, timeoutMs: 1000, maxBytes: 1000 })).toBeNull();
    } finally {
      h.stop();
    }
  });

  it('run() goes through the shared helper: no fork of this process', async () => {
    const before = directSpawns.count;
    const r = await run('uname', ['-s']);
    expect(r.stdout.trim()).toBe('Linux');
    expect(directSpawns.count).toBe(before);
  });
});
