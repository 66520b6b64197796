/**
 * The local runner against the in-memory engine: each check in its own
 * container, judged on its output and exit status, killed at its time
 * limit or on abort, and removed whatever happened.
 */
import { runLocal } from '../../src/checks/local';
import type { Check } from '../../src/recipe/checks';
import type { ContainerSpec } from '../../src/engine/engine';
import { resolveTarget } from '../../src/checks/target';
import { InputError, InterruptedError } from '../../src/errors';
import { dockerhashOf } from '../../src/recipe/names';
import { LABEL } from '../../src/validate/labels';
import { FakeEngine, fakeImage, type ScriptedProcess } from '../support/fake-engine';
import { until } from '../support/poll';

function check(name: string, extra: Partial<Check> = {}): Check {
  return {
    name,
    ranks: 1,
    nodes: 1,
    gpus: 0,
    env: {},
    unset: [],
    command: `run-${name}`,
    timeoutSeconds: 60,
    ...extra,
  };
}

const PROFILE = { launcher: 'mpirun -n {ranks}' };

async function engineRunning(
  process: (spec: ContainerSpec) => ScriptedProcess,
): Promise<{ engine: FakeEngine; image: string }> {
  const engine = new FakeEngine();
  const img = await fakeImage({ files: [{ name: 'hello', content: 'hi\n' }] });
  engine.addImage(img);
  engine.process = process;
  return { engine, image: img.id };
}

/** Which check a container runs: the command is the last line of its script. */
const commandOf = (spec: ContainerSpec) => spec.cmd?.[2] ?? '';

describe('runLocal over the in-memory engine', () => {
  it('judges each check on its output and exit status, in a fresh container with no network, removed after', async () => {
    const { engine, image } = await engineRunning((spec) =>
      commandOf(spec).includes('run-ok')
        ? { output: ['hello ', 'world\n', 'done'], exitCode: 0 }
        : { output: ['oops\n'], exitCode: 3 },
    );
    const seen: string[] = [];

    const results = await runLocal(engine, image, [check('ok', { expect: 'hello world' }), check('bad')], PROFILE, {
      labels: { 'io.sifkit.test': 'x' },
      onCheck: (r) => seen.push(r.name),
    });

    expect(results.map((r) => [r.name, r.outcome, r.exitCode])).toEqual([
      ['ok', 'passed', 0],
      ['bad', 'failed', 3],
    ]);
    expect(results[1].reason).toBe('exit status 3');
    expect(seen).toEqual(['ok', 'bad']);
    const creates = engine.calls.filter((c) => c.op === 'createContainer').map((c) => c.args[0] as ContainerSpec);
    expect(creates).toHaveLength(2);
    expect(creates[0]).toMatchObject({
      image,
      network: 'none',
      shmSizeBytes: 256 << 20,
      labels: { 'io.sifkit.test': 'x' },
    });
    expect(creates[0].cmd?.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(creates[0].entrypoint).toBeUndefined();
    // Attached before start, so no output is lost.
    const ops = engine.ops();
    expect(ops.indexOf('attach')).toBeLessThan(ops.indexOf('start'));
    expect(engine.containers.size).toBe(0);
  });

  it('keeps the last line of output, still in flight when the process exited and without a newline', async () => {
    const { engine, image } = await engineRunning(() => ({
      output: ['first\n'],
      afterExit: ['second\n', 'last line'],
      exitCode: 0,
    }));
    const [r] = await runLocal(engine, image, [check('tail', { expect: 'last line' })], PROFILE);
    expect(r).toMatchObject({ outcome: 'passed', passed: true });
    expect(r.tail.split('\n').at(-1)).toBe('last line');
  });

  it('fails a check whose output lacks what it expects', async () => {
    const { engine, image } = await engineRunning(() => ({ output: ['something else\n'], exitCode: 0 }));
    const [r] = await runLocal(engine, image, [check('expects', { expect: '/^ok$/m' })], PROFILE);
    expect(r).toMatchObject({ outcome: 'failed', reason: 'output lacks "/^ok$/m"' });
  });

  it('kills a check at its time limit, judges it timed out and removes its container', async () => {
    const { engine, image } = await engineRunning(() => ({ output: ['started\n'], exitCode: 0, hang: true }));
    // A fraction of a second: the runner's own timer, the fake never ends by itself.
    const [r] = await runLocal(engine, image, [check('slow', { timeoutSeconds: 0.2 })], PROFILE);
    expect(r).toMatchObject({ outcome: 'timeout', passed: false, exitCode: 137, reason: 'timed out after 0.2 s' });
    expect(r.tail).toContain('started');
    expect(engine.ops()).toContain('kill');
    expect(engine.containers.size).toBe(0);
  });

  it('stops on abort: the running check is cancelled, its container removed, no further check started', async () => {
    const { engine, image } = await engineRunning(() => ({ output: ['working\n'], exitCode: 0, hang: true }));
    const ac = new AbortController();
    const seen: string[] = [];

    const p = runLocal(engine, image, [check('first'), check('second')], PROFILE, {
      signal: ac.signal,
      onCheck: (r) => seen.push(`${r.name} ${r.outcome}`),
    });
    await until(() => engine.ops().includes('start'), 5);
    ac.abort();

    await expect(p).rejects.toThrow(InterruptedError);
    expect(seen).toEqual(['first cancelled']);
    expect(engine.calls.filter((c) => c.op === 'createContainer')).toHaveLength(1);
    expect(engine.ops()).toContain('kill');
    expect(engine.containers.size).toBe(0);
  });

  it('removes the container when it cannot start', async () => {
    const { engine, image } = await engineRunning(() => ({ output: [], exitCode: 0 }));
    const fail = new Error('start refused');
    const create = engine.createContainer.bind(engine);
    engine.createContainer = async (spec) => ({ ...(await create(spec)), start: () => Promise.reject(fail) });
    await expect(runLocal(engine, image, [check('nostart')], PROFILE)).rejects.toBe(fail);
    expect(engine.containers.size).toBe(0);
  });
});

describe('resolveTarget over the in-memory engine', () => {
  it('names an engine image by its labels and its ID', async () => {
    const engine = new FakeEngine();
    const img = await fakeImage({
      files: [],
      tags: ['unit/labelled:1'],
      labels: { [LABEL.stem]: 'unit-labelled-1', [LABEL.recipe]: 'labelled' },
    });
    engine.addImage(img);
    const t = await resolveTarget('docker-daemon:unit/labelled:1', undefined, engine);
    expect(t).toMatchObject({
      stem: 'unit-labelled-1',
      recipe: 'labelled',
      image: img.id,
      dockerhash: dockerhashOf(img.id),
      name: `unit-labelled-1-dockerhash-${dockerhashOf(img.id)}.sif`,
    });
  });

  it('says the engine has no such image on a 404, and names the other form a target takes', async () => {
    const p = resolveTarget('unit/none:1', undefined, new FakeEngine());
    await expect(p).rejects.toThrow(InputError);
    await expect(p).rejects.toMatchObject({
      code: 'no-image',
      message: 'the engine has no image unit/none:1, and "unit/none:1" is not a .sif file',
      hint: 'a test target is an image in the engine (tag or ID) or a path to a .sif file',
    });
  });
});
