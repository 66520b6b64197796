/**
 * Follows a tar stream's member boundaries, chunk by chunk, to tell a
 * whole archive from one cut short. An engine answering an HTTP/1.0
 * request ends the body by closing the connection (engine/socket-tar.ts),
 * so a daemon that dies halfway would look like a shorter image; the tar
 * itself says where it ends: the zero block after its last member. Only
 * the headers (and extension records) are read, a few per layer whatever
 * the image's size.
 */
import { TarWalk } from './tar-walk';

export class TarEnd {
  private readonly walk = new TarWalk();

  /** Takes the stream's next chunk; throws on a header that is not a tar's. */
  feed(chunk: Buffer): void {
    this.walk.feed(chunk);
  }

  /** Why the bytes fed so far are not a whole tar; undefined when they are. */
  get cut(): string | undefined {
    return cutOf(this.walk);
  }
}

/** Why a walk's bytes so far are not a whole tar; undefined when they are. */
export function cutOf(w: TarWalk): string | undefined {
  if (w.ended) return undefined;
  const at = `it ends at byte ${w.pos}`;
  if (w.held > 0) return `${at}, inside the header at byte ${w.pos - w.held}`;
  if (w.left > 0 || w.sparseData !== undefined)
    return `${at}, inside the member whose header is at byte ${w.lastHeader}`;
  return `${at}, before the end-of-archive block`;
}
