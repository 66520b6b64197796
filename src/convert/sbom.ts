/**
 * The image's packages as a CycloneDX 1.6 JSON document, made with
 * @cyclonedx/cyclonedx-library and checked against its schema before it
 * is used. Deterministic: no serial number, no timestamp, fixed
 * references, sorted lists, so a reproducible SIF gets the same bytes.
 */
import type * as CDX from '@cyclonedx/cyclonedx-library';
import type * as Purl from 'packageurl-js';
import type { ImagePackage } from './packages';

export interface SbomSubject {
  /** The image's name (its stem) and version, as its labels give them. */
  name: string;
  version?: string;
  imageId?: string;
}

/** Both libraries take a sixth of a second to load: only a conversion that writes an SBOM loads them. */
function cyclonedx(): typeof CDX {
  return require('@cyclonedx/cyclonedx-library') as typeof CDX;
}

function purlOf(p: ImagePackage): Purl.PackageURL {
  const { PackageURL } = require('packageurl-js') as typeof Purl;
  if (p.type === 'deb')
    return new PackageURL('deb', 'debian', p.name, p.version, p.arch ? { arch: p.arch } : undefined, undefined);
  if (p.type === 'conda') {
    const q: Record<string, string> = {};
    if (p.build) q.build = p.build;
    if (p.channel) q.channel = p.channel;
    return new PackageURL('conda', undefined, p.name, p.version, Object.keys(q).length ? q : undefined, undefined);
  }
  // PyPI names are case-insensitive with -, _ and . the same (packageurl spec: lowercase, '-').
  return new PackageURL(
    'pypi',
    undefined,
    p.name.toLowerCase().replace(/[-_.]+/g, '-'),
    p.version,
    undefined,
    undefined,
  );
}

/**
 * The SBOM text. `notes` become metadata properties (`sifkit:note`): what
 * could not be read (an rpm database) is said, not silently left out.
 */
export function sbomDocument(
  subject: SbomSubject,
  packages: ImagePackage[],
  sifkitVersion: string,
  notes: string[] = [],
): string {
  const cdx = cyclonedx();
  const bom = new cdx.Models.Bom();
  const container = new cdx.Models.Component(cdx.Enums.ComponentType.Container, subject.name, {
    version: subject.version,
    bomRef: `container:${subject.name}`,
  });
  if (subject.imageId) container.properties.add(new cdx.Models.Property('sifkit:image-id', subject.imageId));
  bom.metadata.component = container;
  bom.metadata.tools.components.add(
    new cdx.Models.Component(cdx.Enums.ComponentType.Application, 'sifkit', {
      version: sifkitVersion,
      bomRef: 'tool:sifkit',
    }),
  );
  for (const n of notes) bom.metadata.properties.add(new cdx.Models.Property('sifkit:note', n));
  const seen = new Map<string, number>();
  for (const p of packages) {
    const base = purlOf(p).toString();
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const c = new cdx.Models.Component(cdx.Enums.ComponentType.Library, p.name, {
      version: p.version,
      purl: base,
      bomRef: n === 1 ? base : `${base}#${n}`,
    });
    c.properties.add(new cdx.Models.Property('sifkit:record', p.source));
    if (p.license) c.licenses.add(new cdx.Models.NamedLicense(p.license));
    bom.components.add(c);
  }
  const serializer = new cdx.Serialize.JsonSerializer(new cdx.Serialize.JSON.Normalize.Factory(cdx.Spec.Spec1dot6));
  return serializer.serialize(bom, { sortLists: true, space: 0 });
}

/** Compiling the schema takes seconds; the validator is made once per process, on first use. */
let validator: CDX.Validation.JsonStrictValidator | undefined;

/** Checks the text against CycloneDX 1.6's JSON schema; throws a one-line Error naming the first problem. */
export async function validateSbom(text: string): Promise<void> {
  if (validator === undefined) {
    const cdx = cyclonedx();
    validator = new cdx.Validation.JsonStrictValidator(cdx.Spec.Version.v1dot6);
  }
  const errors = await validator.validate(text);
  if (errors !== null)
    throw new Error(`the SBOM does not match the CycloneDX 1.6 schema: ${JSON.stringify(errors).slice(0, 300)}`);
}
