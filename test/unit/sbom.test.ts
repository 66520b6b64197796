/** Package records → packages → a CycloneDX document that passes its schema. */
import { packagesOf, parseDpkgStatus, parsePythonMetadata, recordKind } from '../../src/convert/packages';
import { sbomDocument, validateSbom } from '../../src/convert/sbom';
import { provenanceDocument } from '../../src/convert/provenance-doc';
import { baseImages, parseDockerfile } from '../../src/recipe/parsed-dockerfile';

const STATUS = `Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
`;

describe('package records', () => {
  it('knows which paths are records', () => {
    expect(recordKind('/var/lib/dpkg/status')).toBe('dpkg');
    expect(recordKind('/opt/conda/conda-meta/numpy-1.26.4-py311h.json')).toBe('conda');
    expect(recordKind('/usr/lib/python3/dist-packages/mpi4py-3.1.4.dist-info/METADATA')).toBe('python');
    expect(recordKind('/usr/lib/sysimage/rpm/Packages.db')).toBe('rpmdb');
    expect(recordKind('/etc/passwd')).toBeUndefined();
  });

  it('reads installed dpkg packages only', () => {
    expect(parseDpkgStatus(STATUS).map((p) => `${p.name} ${p.version} ${p.arch}`)).toEqual([
      'bash 5.2.15-2+b2 amd64',
      'tzdata 2024a-0+deb12u1 all',
    ]);
  });

  it('reads Python METADATA headers, not the body', () => {
    expect(
      parsePythonMetadata(
        'Metadata-Version: 2.1\nName: mpi4py\nVersion: 3.1.4\nLicense: BSD\n\nName: not-this\n',
        '/x',
      ),
    ).toMatchObject({ name: 'mpi4py', version: '3.1.4', license: 'BSD' });
    expect(parsePythonMetadata('Metadata-Version: 2.1\n', '/x')).toBeUndefined();
  });

  it('makes a deterministic CycloneDX 1.6 document that its schema accepts', async () => {
    const packages = packagesOf([
      { path: '/var/lib/dpkg/status', text: STATUS },
      {
        path: '/opt/conda/conda-meta/numpy-1.26.4-py311h.json',
        text: JSON.stringify({
          name: 'numpy',
          version: '1.26.4',
          build: 'py311h',
          channel: 'https://conda.anaconda.org/conda-forge/linux-64',
        }),
      },
      {
        path: '/opt/conda/lib/python3.11/site-packages/mpi4py-3.1.4.dist-info/METADATA',
        text: 'Name: mpi4py\nVersion: 3.1.4\n',
      },
    ]);
    const a = sbomDocument({ name: 'lumi-x', version: '1' }, packages, '0.1.0', [
      'rpm database /var/lib/rpm/Packages not read',
    ]);
    expect(
      sbomDocument({ name: 'lumi-x', version: '1' }, packages, '0.1.0', [
        'rpm database /var/lib/rpm/Packages not read',
      ]),
    ).toBe(a);
    await validateSbom(a);
    const doc = JSON.parse(a);
    expect(doc.components.map((c: { purl: string }) => c.purl).sort()).toEqual([
      'pkg:conda/numpy@1.26.4?build=py311h&channel=linux-64',
      'pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64',
      'pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all',
      'pkg:pypi/mpi4py@3.1.4',
    ]);
    expect(doc.serialNumber).toBeUndefined();
    expect(doc.metadata.timestamp).toBeUndefined();
  });

  it('a document that breaks the schema is refused', async () => {
    await expect(
      validateSbom('{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"nonsense","name":"x"}]}'),
    ).rejects.toThrow(/does not match the CycloneDX 1.6 schema/);
  });
});

describe('provenance', () => {
  it('names the FROM images (not the stages a FROM builds on) and keeps a stable order', () => {
    expect(
      baseImages(
        parseDockerfile(
          'FROM --platform=linux/amd64 debian:bookworm-slim AS base\nRUN x\nfrom base\nFROM debian:bookworm-slim\n',
        ),
      ),
    ).toEqual(['debian:bookworm-slim']);
    const a = provenanceDocument(
      { labels: { 'io.sifkit.param.b': '2', 'io.sifkit.param.a': '1', 'io.sifkit.recipe': 'r' } },
      '0.1.0',
    ).toString();
    expect(JSON.parse(a)).toMatchObject({ recipe: 'r', parameters: { a: '1', b: '2' } });
    expect(Object.keys(JSON.parse(a).parameters)).toEqual(['a', 'b']);
  });

  it('names served files, sources and the engine in a stable order, and refuses a document its schema does not accept', () => {
    const hex = (c: string) => c.repeat(64);
    const doc = JSON.parse(
      provenanceDocument(
        {
          served: {
            digest: hex('d'),
            files: [
              { file: 'tool', role: 'tool', path: '/opt/bin/tool', sha256: hex('b') },
              { file: 'cpe.tar', role: 'licensed', sha256: hex('a') },
            ],
          },
          sources: [
            { name: 'z', kind: 'file', url: 'https://example.org/z.tar.gz', sha256: hex('c') },
            { name: 'a', kind: 'git', url: 'https://example.org/a.git', commit: 'f'.repeat(40), submodules: false },
          ],
          engine: { name: 'docker', version: '20.10.24+dfsg1', apiVersion: '1.41' },
        },
        '0.1.0',
      ).toString(),
    );
    expect(doc.served.files.map((f: { file: string }) => f.file)).toEqual(['cpe.tar', 'tool']);
    expect(doc.sources.map((s: { name: string }) => s.name)).toEqual(['a', 'z']);
    expect(doc.engine).toEqual({ name: 'docker', version: '20.10.24+dfsg1', apiVersion: '1.41' });
    // What an engine or a directory listing answered is data: checked before it is written.
    expect(() =>
      provenanceDocument({ engine: { name: 'docker', version: '20.10\n"x"', apiVersion: '1.41' } }, '0.1.0'),
    ).toThrow(/^the provenance document: engine\.version: /);
    expect(() =>
      provenanceDocument(
        { served: { digest: hex('d'), files: [{ file: '../etc/passwd', role: 'licensed', sha256: hex('a') }] } },
        '0.1.0',
      ),
    ).toThrow(/^the provenance document: served\.files\[0\]\.file: /);
  });
});
