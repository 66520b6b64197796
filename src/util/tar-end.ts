/**
 * Follows a tar stream's member boundaries, chunk by chunk, to tell a
 * whole archive from one cut short. An engine answering an HTTP/1.0
 * request ends the body by closing the connection (engine/socket-tar.ts),
 * so a daemon that dies halfway would look like a shorter image; the tar
 * itself says where it ends: the zero block after its last member. Only
 * the headers are read, a few per layer whatever the image's size.
 */
import { TAR_BLOCK, tarChecksumOk, tarNumber } from './tar-header';

/** Type flags whose size field names no data (tar readers skip none): links, devices, directories, FIFOs. */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

export class TarEnd {
  /** Bytes seen. */
  private seen = 0;
  /** Where the next header starts, and where the last one started. */
  private next = 0;
  private last = -1;
  /** The header at `next`, as far as it came. */
  private readonly head = Buffer.alloc(TAR_BLOCK);
  private held = 0;
  /** While a GNU sparse header's extension blocks come: the member's data (in whole blocks) after them. */
  private afterExtensions?: number;
  /** The end-of-archive block was seen. */
  private ended = false;

  /** Takes the stream's next chunk; throws on a header that is not a tar's. */
  feed(chunk: Buffer): void {
    const start = this.seen;
    this.seen += chunk.length;
    while (!this.ended && this.next + this.held < this.seen) {
      const from = this.next + this.held - start;
      const n = Math.min(TAR_BLOCK - this.held, chunk.length - from);
      chunk.copy(this.head, this.held, from, from + n);
      this.held += n;
      if (this.held < TAR_BLOCK) return;
      this.held = 0;
      if (this.afterExtensions === undefined && this.head.every((b) => b === 0)) {
        this.ended = true;
        return;
      }
      if (this.afterExtensions !== undefined) {
        // A GNU sparse header's extension block: another follows while its flag at 504 is set.
        this.next += TAR_BLOCK;
        if (this.head[504] !== 1) {
          this.next += this.afterExtensions;
          this.afterExtensions = undefined;
        }
        continue;
      }
      if (!tarChecksumOk(this.head)) throw new Error(`not a tar: a bad header checksum at byte ${this.next}`);
      const type = String.fromCharCode(this.head[156] || 0x30);
      const size = HEADER_ONLY.has(type) ? 0 : tarNumber(this.head, 124, 12);
      const data = Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
      this.last = this.next;
      this.next += TAR_BLOCK;
      // An old GNU sparse file whose map goes on past its header (flag at 482): its data follows the extension blocks.
      if (type === 'S' && this.head[482] === 1) this.afterExtensions = data;
      else this.next += data;
    }
  }

  /** Why the bytes fed so far are not a whole tar; undefined when they are. */
  get cut(): string | undefined {
    if (this.ended) return undefined;
    const at = `it ends at byte ${this.seen}`;
    if (this.held > 0) return `${at}, inside the header at byte ${this.next}`;
    if (this.next > this.seen || this.afterExtensions !== undefined)
      return `${at}, inside the member whose header is at byte ${this.last}`;
    return `${at}, before the end-of-archive block`;
  }
}
