import { describe, expect, it } from 'vitest';
import { StepSequence, type Step } from '../../src/main/core/session.js';

function recorder() {
  const trail: string[] = [];
  const step = (name: string, failStart = false, failStop = false): Step<object> => ({
    name,
    async start() { trail.push(`start ${name}`); if (failStart) throw new Error(`${name} broke`); },
    async stop(_c, why) { trail.push(`stop ${name} (${why})`); if (failStop) throw new Error(`${name} stuck`); },
  });
  return { trail, step };
}

describe('session steps', () => {
  it('starts in order and stops in reverse', async () => {
    const { trail, step } = recorder();
    const s = new StepSequence([step('a'), step('b'), step('c')]);
    await s.start({});
    expect(await s.stop({})).toEqual([]);
    expect(trail).toEqual(['start a', 'start b', 'start c', 'stop c (finished)', 'stop b (finished)', 'stop a (finished)']);
  });

  it('unwinds what already started when a step fails, and names the step', async () => {
    const { trail, step } = recorder();
    const s = new StepSequence([step('a'), step('b'), step('c', true), step('d')]);
    await expect(s.start({})).rejects.toThrow(/Step "c" failed: c broke/);
    expect(trail).toEqual(['start a', 'start b', 'start c', 'stop b (unwind)', 'stop a (unwind)']);
  });

  it('keeps stopping the others when one stop fails', async () => {
    const { trail, step } = recorder();
    const s = new StepSequence([step('a'), step('b', false, true), step('c')]);
    await s.start({});
    const errs = await s.stop({}, 'aborted');
    expect(errs.map((e) => e.step)).toEqual(['b']);
    expect(trail.slice(3)).toEqual(['stop c (aborted)', 'stop b (aborted)', 'stop a (aborted)']);
  });

  it('refuses two steps with one name', () => {
    const { step } = recorder();
    expect(() => new StepSequence([step('x'), step('x')])).toThrow(/Two session steps are named "x"/);
  });
});
