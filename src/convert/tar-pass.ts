/**
 * A tar passed on with its members edited, never repacked: each member's
 * header blocks are replaced by the ones `edit` returns for it (or the
 * member is left out, data and all), and its data go on as the very slices
 * of the chunks the stream came in. The engine converter (from-engine.ts)
 * feeds a container's export through it to mksquashfs: a gigabyte is a
 * thousand 1 MiB chunks and a few thousand headers, where a tar parser and
 * packer of streams (tar-stream) made a round of stream calls for every
 * piece and a copy of every byte, which cost node most of its CPU.
 *
 * The stream must end with the tar's end-of-archive block (what follows it
 * is not read); `trailer` then gives what goes after the last member,
 * end-of-archive blocks included.
 */
import { Transform } from 'node:stream';
import { OperationError, isSifkitError } from '../errors';
import { cutOf } from '../util/tar-end';
import { TarWalk, type WalkedMember } from '../util/tar-walk';

export interface MemberEdit {
  /** The header blocks to write for the member; null leaves it out, data and all. */
  blocks: Buffer | null;
  /** Called with the first bytes of its data (as many as `bytes`, fewer if it is shorter). */
  peek?: { bytes: number; seen(head: Buffer): void };
}

export function tarPass(edit: (m: WalkedMember) => MemberEdit, trailer: () => Buffer, what: string): Transform {
  let keep = false;
  let peek: MemberEdit['peek'];
  let peeked: Buffer[] = [];
  let peekedBytes = 0;
  const seePeek = () => {
    const p = peek;
    peek = undefined;
    p?.seen(Buffer.concat(peeked).subarray(0, p.bytes));
    peeked = [];
  };
  const walk = new TarWalk({
    member: (m) => {
      if (peek) seePeek();
      const e = edit(m);
      keep = e.blocks !== null;
      if (e.blocks?.length) out.push(e.blocks);
      peek = keep && e.peek && m.size > 0 ? { bytes: Math.min(e.peek.bytes, m.size), seen: e.peek.seen } : undefined;
      peekedBytes = 0;
    },
    data: (piece) => {
      if (!keep) return;
      if (peek) {
        peeked.push(Buffer.from(piece.subarray(0, peek.bytes - peekedBytes)));
        peekedBytes += peeked[peeked.length - 1].length;
        if (peekedBytes >= peek.bytes) seePeek();
      }
      out.push(piece);
    },
  });
  const out = new Transform({
    readableHighWaterMark: 1 << 20,
    writableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, done) {
      try {
        walk.feed(chunk);
      } catch (e) {
        // The walk's own finding (a header that is not a tar's) is this stream's fault; an edit's error is the edit's.
        if (isSifkitError(e)) return done(e);
        return done(new OperationError('bad-tar', `${what} is ${(e as Error).message}`));
      }
      done();
    },
    flush(done) {
      const cut = cutOf(walk);
      if (cut) return done(new OperationError('stream-cut', `${what} stopped short: ${cut}`));
      try {
        this.push(trailer());
      } catch (e) {
        return done(e as Error);
      }
      done();
    },
  });
  return out;
}
