/** Dotted versions: glibc's from the version names libc.so.6 defines. Pure. */

/** The highest GLIBC_x.y[.z] among version names. */
export function glibcVersion(defines: string[]): string | undefined {
  const vs = defines.map((d) => /^GLIBC_(\d+(?:\.\d+)+)$/.exec(d)?.[1]).filter((v): v is string => Boolean(v));
  return vs.sort(compareVersions).pop();
}

export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}
