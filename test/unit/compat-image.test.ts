/** The compat commands' IMAGE argument, parsed once at the edge into the object the library takes. */
import * as path from 'node:path';
import { compatImageName, parseCompatImage } from '../../src/compat/run';

describe('parseCompatImage', () => {
  it('reads docker-daemon:REF (with or without //) as an image in the engine, anything else as a SIF path', () => {
    expect(parseCompatImage('docker-daemon:lumi/x:1')).toEqual({ kind: 'engine', ref: 'lumi/x:1' });
    expect(parseCompatImage('docker-daemon://sha256:abc')).toEqual({ kind: 'engine', ref: 'sha256:abc' });
    expect(parseCompatImage('out/x.sif')).toEqual({ kind: 'sif', path: path.resolve('out/x.sif') });
    // A bare image reference is not taken for one: the engine is named, never guessed.
    expect(parseCompatImage('lumi/x:1')).toEqual({ kind: 'sif', path: path.resolve('lumi/x:1') });
  });

  it('names the image in reports as the command line would give it again', () => {
    expect(compatImageName({ kind: 'engine', ref: 'sha256:abc' })).toBe('docker-daemon:sha256:abc');
    expect(compatImageName({ kind: 'sif', path: '/t/x.sif' })).toBe('/t/x.sif');
    expect(compatImageName(parseCompatImage('docker-daemon:lumi/x:1'))).toBe('docker-daemon:lumi/x:1');
  });
});
