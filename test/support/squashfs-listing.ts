/**
 * `unsquashfs -lln -UTC`'s lines, made from sifkit's squashfs reader, so a
 * test can compare the two listings line for line.
 */
import { statMode, type Entry } from '../../src/squashfs/format';

const TYPE: Record<Entry['inode']['kind'], string> = {
  dir: 'd',
  file: '-',
  link: 'l',
  block: 'b',
  char: 'c',
  fifo: 'p',
  socket: 's',
};

/** `rwxr-sr-t`: permission letters as ls (and unsquashfs) print them. */
function perms(mode: number): string {
  const bit = (m: number, c: string) => (mode & m ? c : '-');
  const special = (x: number, s: number, on: string, off: string) =>
    mode & s ? (mode & x ? on : off) : mode & x ? 'x' : '-';
  return [
    bit(0o400, 'r'),
    bit(0o200, 'w'),
    special(0o100, 0o4000, 's', 'S'),
    bit(0o040, 'r'),
    bit(0o020, 'w'),
    special(0o010, 0o2000, 's', 'S'),
    bit(0o004, 'r'),
    bit(0o002, 'w'),
    special(0o001, 0o1000, 't', 'T'),
  ].join('');
}

function date(secs: number): string {
  return new Date(secs * 1000).toISOString().replace('T', ' ').slice(0, 16);
}

/** unsquashfs pads owner and size to this many characters together. */
const TOTAL = 25;

export function listingLine(e: Entry): string {
  const i = e.inode;
  const owner = `${i.uid}/${i.gid}`;
  const pad = TOTAL - owner.length + 1;
  const size =
    i.kind === 'block' || i.kind === 'char'
      ? `${' '.repeat(Math.max(pad - 7, 0))}${String(i.rdev >> 8).padStart(3)},${String(i.rdev & 0xff).padStart(3)}`
      : String(
          i.kind === 'file' || i.kind === 'dir' ? i.size : i.kind === 'link' ? Buffer.byteLength(i.target) : 0,
        ).padStart(Math.max(pad, 0));
  const name = `squashfs-root${e.path === '/' ? '' : e.path}`;
  return `${TYPE[i.kind]}${perms(statMode(i))} ${owner} ${size} ${date(i.mtime)} ${i.kind === 'link' ? `${name} -> ${i.target}` : name}`;
}
