import { newSlots } from '../../src/pipeline/slots';

/** A piece of work that says when it started and ends when told. */
function held() {
  let started!: () => void;
  let end!: () => void;
  const began = new Promise<void>((r) => (started = r));
  const ended = new Promise<void>((r) => (end = r));
  let running = false;
  return {
    began,
    end,
    get running() {
      return running;
    },
    fn: async () => {
      running = true;
      started();
      await ended;
    },
  };
}

describe('slots', () => {
  it('bounds builds per engine: one at a time on each, two engines side by side', async () => {
    const slots = newSlots({ build: 1 });
    const a1 = held();
    const a2 = held();
    const b1 = held();
    const runs = [slots.use('build', a1.fn, 'a'), slots.use('build', a2.fn, 'a'), slots.use('build', b1.fn, 'b')];
    // Engine b's build starts while engine a's first one holds a's slot.
    await Promise.all([a1.began, b1.began]);
    expect(a2.running).toBe(false);
    a1.end();
    await a2.began;
    a2.end();
    b1.end();
    await Promise.all(runs);
  });

  it('bounds conversions on this host whatever engine is named', async () => {
    const slots = newSlots({ convert: 1 });
    const c1 = held();
    const c2 = held();
    const runs = [slots.use('convert', c1.fn, 'a'), slots.use('convert', c2.fn, 'b')];
    await c1.began;
    expect(c2.running).toBe(false);
    c1.end();
    await c2.began;
    c2.end();
    await Promise.all(runs);
  });
});
