/**
 * What the Docker implementation sends for sifkit's requests: the settings
 * the engine must not be left to choose (network, terminal, clean-up).
 */
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { buildOptions, createOptions, dockerEngine } from '../../src/engine/docker';
import { OperationError } from '../../src/errors';

describe("the Docker engine's requests", () => {
  it('creates the export container with no network stack and an entrypoint that is never run', () => {
    expect(
      createOptions({
        image: 'sha256:abc',
        entrypoint: ['/sifkit-export-only'],
        cmd: [],
        labels: { 'io.sifkit.convert': 'h:1' },
        network: 'disabled',
      }),
    ).toEqual({
      Image: 'sha256:abc',
      Entrypoint: ['/sifkit-export-only'],
      Cmd: [],
      Tty: false,
      Labels: { 'io.sifkit.convert': 'h:1' },
      NetworkDisabled: true,
      HostConfig: { NetworkMode: 'none' },
    });
  });

  it("creates a check's container without a terminal, with only loopback and the shared memory asked for, keeping the image's entrypoint", () => {
    expect(
      createOptions({
        image: 'sha256:abc',
        cmd: ['/bin/sh', '-c', 'true'],
        labels: undefined,
        network: 'none',
        shmSizeBytes: 256 << 20,
      }),
    ).toEqual({
      Image: 'sha256:abc',
      Cmd: ['/bin/sh', '-c', 'true'],
      Tty: false,
      Labels: undefined,
      HostConfig: { NetworkMode: 'none', ShmSize: 256 << 20 },
    });
  });

  it('builds on the asked network, removing step containers even after a failure, cancellable', () => {
    const signal = new AbortController().signal;
    expect(
      buildOptions({
        context: Readable.from([]),
        buildargs: { SERVER_PORT: '1' },
        labels: { a: 'b' },
        networkMode: 'host',
        noCache: false,
        signal,
      }),
    ).toEqual({
      buildargs: { SERVER_PORT: '1' },
      labels: { a: 'b' },
      networkmode: 'host',
      rm: true,
      forcerm: true,
      nocache: false,
      abortSignal: signal,
    });
  });
});

const ID = `sha256:${'a'.repeat(64)}`;
const CONTAINER = 'c'.repeat(64);

/** A dockerode client that gives the answers asked for: only the calls the engine makes. */
function answering(a: { images?: unknown; inspect?: unknown; containers?: unknown; wait?: unknown; create?: string }) {
  const container = { id: a.create ?? CONTAINER, wait: async () => a.wait };
  return dockerEngine(
    {
      listImages: async () => a.images,
      getImage: () => ({ inspect: async () => a.inspect }),
      listContainers: async () => a.containers,
      createContainer: async () => container,
    } as unknown as Docker,
    'unix:///test.sock',
  );
}

describe("the Docker engine's answers", () => {
  it('are read into sifkit types when they fit their schema, unknown fields passed by', async () => {
    const engine = answering({
      images: [{ Id: ID, RepoTags: null, Created: 1, Size: 2, Labels: { a: 'b' }, VirtualSize: 2 }],
      inspect: {
        Id: ID,
        RepoTags: ['x:1'],
        Size: 2,
        Architecture: 'amd64',
        Created: '2026-01-01T00:00:00Z',
        Config: { Env: ['A=1'], Labels: null },
      },
      containers: [{ Id: CONTAINER, Labels: null }],
      wait: { StatusCode: 3, Error: null },
    });
    await expect(engine.listImages('k=v')).resolves.toEqual([
      { id: ID, repoTags: [], created: 1, size: 2, labels: { a: 'b' } },
    ]);
    await expect(engine.inspectImage('x:1')).resolves.toMatchObject({
      id: ID,
      architecture: 'amd64',
      config: { Env: ['A=1'] },
      labels: {},
    });
    await expect(engine.listContainers('k')).resolves.toEqual([{ id: CONTAINER, labels: {} }]);
    const c = await engine.createContainer({ image: ID, network: 'none' });
    await expect(c.wait()).resolves.toBe(3);
  });

  it.each([
    [
      'an image list that is not a list',
      { images: { message: 'ok' } },
      (e: ReturnType<typeof answering>) => e.listImages('k=v'),
      "the Docker engine's answer to list images labelled k=v: (the document): expected a list, found a mapping",
    ],
    [
      'an image whose size is text',
      { images: [{ Id: ID, Created: 1, Size: '2' }] },
      (e: ReturnType<typeof answering>) => e.listImages('k=v'),
      'the Docker engine\'s answer to list images labelled k=v: [0].Size: expected a number, found the string "2"',
    ],
    [
      'an inspect without an ID',
      { inspect: { Size: 1, Architecture: 'amd64', Created: 'x' } },
      (e: ReturnType<typeof answering>) => e.inspectImage('x:1'),
      "the Docker engine's answer to inspect image x:1: Id: expected a string, found nothing",
    ],
    [
      'an inspect whose Env is not a list',
      { inspect: { Id: ID, Size: 1, Architecture: 'amd64', Created: 'x', Config: { Env: 'A=1' } } },
      (e: ReturnType<typeof answering>) => e.inspectImage('x:1'),
      'the Docker engine\'s answer to inspect image x:1: Config.Env: expected a list, found the string "A=1"',
    ],
    [
      'a container list entry with a bad ID',
      { containers: [{ Id: '../x' }] },
      (e: ReturnType<typeof answering>) => e.listContainers('k'),
      'the Docker engine\'s answer to list containers labelled k: [0].Id: expected a container ID (64 hex digits), found the string "../x"',
    ],
    [
      'a wait without a status',
      { wait: { Error: null } },
      async (e: ReturnType<typeof answering>) => (await e.createContainer({ image: ID, network: 'none' })).wait(),
      `the Docker engine's answer to wait for container ${CONTAINER.slice(0, 12)}: StatusCode: expected a number, found nothing`,
    ],
  ])('refuse %s in one line naming the field (exit 1)', async (_what, answers, call, message) => {
    const p = call(answering(answers));
    await expect(p).rejects.toThrow(OperationError);
    await expect(p).rejects.toMatchObject({ code: 'bad-engine-answer', exitCode: 1, message });
  });
});
