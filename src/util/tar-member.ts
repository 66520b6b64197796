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
