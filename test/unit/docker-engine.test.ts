/**
 * What the Docker implementation sends for sifkit's requests: the settings
 * the engine must not be left to choose (network, terminal, clean-up).
 */
import { Readable } from 'node:stream';
import { buildOptions, createOptions } from '../../src/engine/docker';

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
