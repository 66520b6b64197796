/**
 * A writer's tree (`WNode`) made from a squashfs image read by sifkit's
 * reader: every inode's attributes, each file's data reference re-used
 * (its blocks and fragment block where the image has them, moved by
 * `shift`), hard links as one WFile under several names. The reader does
 * not decode xattrs: the caller gives them by path (a hard link's under
 * any of its names).
 */
import type { Squashfs } from '../../src/squashfs/format';
import { dataRefOf } from '../../src/squashfs/data-ref';
import type { WAttrs, WFile, WNode } from '../../src/squashfs/write';

type Dir = Extract<WNode, { kind: 'dir' }>;

export function treeFromImage(
  fs: Squashfs,
  xattrs: ReadonlyMap<string, Array<[string, Buffer]>> = new Map(),
  shift = 0,
): Dir {
  const files = new Map<number, WFile>();
  const dirs = new Map<string, Dir>();
  let root: Dir | undefined;
  for (const { path, inode: i } of fs.walk()) {
    const attrs: WAttrs = { mode: i.mode & 0o7777, uid: i.uid, gid: i.gid, mtime: i.mtime };
    const x = xattrs.get(path);
    if (x) attrs.xattrs = x;
    let node: WNode;
    if (i.kind === 'dir') node = { kind: 'dir', attrs, children: new Map() };
    else if (i.kind === 'file') {
      let f = files.get(i.inode);
      if (!f) {
        f = { attrs, size: i.size, data: dataRefOf(fs, i, shift) };
        files.set(i.inode, f);
      } else if (x) f.attrs.xattrs = x;
      node = { kind: 'file', file: f };
    } else if (i.kind === 'link') node = { kind: 'symlink', attrs, target: i.target };
    else if (i.kind === 'block' || i.kind === 'char') node = { kind: i.kind, attrs, rdev: i.rdev };
    else node = { kind: i.kind, attrs };
    if (path === '/') {
      root = node as Dir;
      dirs.set('', root);
      continue;
    }
    const cut = path.lastIndexOf('/');
    const parent = dirs.get(path.slice(0, cut));
    if (!parent) throw new Error(`${path}: parent not walked first`);
    parent.children.set(path.slice(cut + 1), node);
    if (node.kind === 'dir') dirs.set(path, node);
  }
  if (!root) throw new Error('no root');
  return root;
}
