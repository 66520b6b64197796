import { BuildStreamParser } from '../../src/engine/progress';
import { splitTag } from '../../src/engine/image-tags';
import { DockerIgnore } from '../../src/recipe/dockerignore';
import { isLicensedPath } from '../../src/fileserver/leakscan';
import { dockerhashOf, parseSifFileName, sifFileName } from '../../src/recipe/names';

describe('build stream parser', () => {
  it('fails on an error line even though the stream ended normally', () => {
    const p = new BuildStreamParser();
    p.feed(
      '{"stream":"Step 1/2 : FROM x\\n"}\n{"stream":"Step 2/2 : RUN false\\n"}\n{"stream":" ---> Running in 0123456789ab\\n"}\n',
    );
    p.feed(
      '{"errorDetail":{"code":1,"message":"The command returned a non-zero code: 1"},"error":"The command returned a non-zero code: 1"}',
    );
    p.end();
    expect(p.error).toBe('The command returned a non-zero code: 1');
    expect(p.step).toEqual({ n: 2, of: 2, instruction: 'RUN false' });
    expect([...p.containers]).toEqual(['0123456789ab']);
    expect(p.tail.at(-1)).toMatch(/^ERROR: /);
  });
  it('joins lines split across chunks and finds the image id', () => {
    const p = new BuildStreamParser();
    const text = '{"aux":{"ID":"sha256:' + 'a'.repeat(64) + '"}}\n{"stream":"Successfully built aaaaaaaaaaaa\\n"}\n';
    for (const ch of text) p.feed(ch);
    expect(p.imageId).toBe('sha256:' + 'a'.repeat(64));
    expect(p.error).toBeUndefined();
  });
  it('fails, naming the field, on a JSON line that is not a build line, and takes no image from it', () => {
    const p = new BuildStreamParser();
    p.feed('{"stream":"Step 1/1 : FROM x\\n"}\n{"stream":5}\n{"aux":{"ID":"sha256:short"}}\n');
    p.end();
    expect(p.error).toBe("the Docker engine's build stream: stream: expected a string, found the number 5");
    expect(p.imageId).toBeUndefined();
    const q = new BuildStreamParser();
    q.feed('{"aux":{"ID":"sha256:short"}}\n');
    expect(q.error).toBe(
      'the Docker engine\'s build stream: aux.ID: expected an image ID (sha256: and 64 hex digits), found the string "sha256:short"',
    );
    expect(q.imageId).toBeUndefined();
  });
  it("passes BuildKit's aux trace strings and unknown fields by", () => {
    const p = new BuildStreamParser();
    p.feed('{"id":"moby.buildkit.trace","aux":"CmQKR3NoYTI1Ng=="}\n{"stream":"ok\\n","progressDetail":{}}\n');
    expect(p.error).toBeUndefined();
    expect(p.tail).toEqual(['ok']);
  });
  it('keeps only the last lines', () => {
    const p = new BuildStreamParser(3);
    for (let i = 0; i < 10; i++) p.feed(`{"stream":"line ${i}\\n"}\n`);
    expect(p.tail).toEqual(['line 7', 'line 8', 'line 9']);
  });
});

describe('.dockerignore', () => {
  const ig = new DockerIgnore('# comment\n*.log\n/build\n**/secret*\n!keep.log\ndocs/**/*.tmp\n');
  it.each([
    ['a.log', true],
    ['keep.log', false],
    ['dir/a.log', false],
    ['build', true],
    ['build/x/y', true],
    ['deep/down/secret.txt', true],
    ['secret', true],
    ['docs/a/b/c.tmp', true],
    ['docs/c.tmp', true],
    ['src/main.py', false],
  ])('%s ignored: %s', (p, want) => {
    expect(ig.ignores(p)).toBe(want);
  });
});

describe('names', () => {
  it('derives the dockerhash and the versioned file names', () => {
    expect(dockerhashOf('sha256:f049c8bd4669aaaa')).toBe('f049c8bd4669');
    const f = sifFileName('lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6', 'f049c8bd4669');
    expect(f).toBe('lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6-dockerhash-f049c8bd4669.sif');
    expect(parseSifFileName(f)).toEqual({
      stem: 'lumi-mpi4py-rocm-6.2.0-python-3.12-mpi4py-3.1.6',
      dockerhash: 'f049c8bd4669',
      ext: 'sif',
    });
    expect(parseSifFileName('random.sif')).toBeUndefined();
  });
  it('splits tags with registry ports', () => {
    expect(splitTag('lumi/lumi-mpi4py:rocm-6.2.0')).toEqual({ repo: 'lumi/lumi-mpi4py', tag: 'rocm-6.2.0' });
    expect(splitTag('host:5000/a/b')).toEqual({ repo: 'host:5000/a/b', tag: 'latest' });
  });
  it('knows the licensed paths, and that whiteouts are not files', () => {
    expect(isLicensedPath('opt/cray/pe/lib64/libmpi_cray.so')).toBe(true);
    expect(isLicensedPath('./opt/cray-deps/x')).toBe(true);
    expect(isLicensedPath('usr/lib64/libcxi.so.1')).toBe(true);
    expect(isLicensedPath('opt/.wh.cray')).toBe(false);
    expect(isLicensedPath('opt/crayon')).toBe(false);
  });
});
