/**
 * Which of an image's files the linker check reads, whatever reads them
 * (sifkit's squashfs reader, unsquashfs, an engine's export). Pure.
 */
/** Whether a file name looks like a shared library's. */
export function libraryName(name: string): boolean {
  return /\.so(\.|$)/.test(name);
}

/** ld.so.conf and what it includes: the text ldconfig reads. */
export function isLdconf(p: string): boolean {
  return p === '/etc/ld.so.conf' || /^\/etc\/ld\.so\.conf\.d\/[^/]+$/.test(p);
}

/** Which regular files to read: libraries by name, anything executable. */
export function elfCandidate(p: string, mode: number, size: number): boolean {
  return size >= 52 && (libraryName(p.slice(p.lastIndexOf('/') + 1)) || (mode & 0o111) !== 0);
}
