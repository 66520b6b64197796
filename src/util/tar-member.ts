/**
 * Whether a layer member is a regular file in the image: what the
 * flattener (convert/flatten.ts) and mksquashfs make one, so what the leak
 * scan must judge by its content. A missing or unknown type flag counts as
 * a file, as tar reads it; a contiguous file is a file.
 */
export function isRegularMember(h: { type?: string | null }): boolean {
  const type = h.type ?? 'file';
  return type === 'file' || type === 'contiguous-file';
}

/**
 * A member's path as the image holds it, however the tar spells it: no
 * leading `/` or `./`, no empty or `.` segments (`./opt//cray/./lib` is
 * `opt/cray/lib`). What the converter makes of a name and what the leak
 * scan judges must be the same path. `..` is left for the caller to refuse.
 */
export function memberPath(name: string): string {
  return name
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
}
