/**
 * Who is on the other end of a loopback TCP connection: the kernel's
 * socket tables (/proc/net/tcp, tcp6) list every socket with the uid that
 * owns it. The client's socket is the entry whose local address is the
 * address the server sees as remote. Parsing is pure; reading is apart.
 */
import { promises as fs } from 'node:fs';

/** The kernel's hex form of an IPv4 address as /proc/net/tcp prints it (host byte order, little-endian here). */
function ipv4Hex(ip: string): string | undefined {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return parts
    .reverse()
    .map((p) => p.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/** Keys under which a client address may appear: plain IPv4 in tcp, v4-mapped in tcp6. */
export function socketKeys(ip: string, port: number): string[] {
  const v4 = ipv4Hex(ip.replace(/^::ffff:/i, ''));
  const p = port.toString(16).padStart(4, '0').toUpperCase();
  if (!v4) return [];
  // ::ffff:a.b.c.d as four little-endian 32-bit words.
  return [`${v4}:${p}`, `0000000000000000FFFF0000${v4}:${p}`];
}

/** The uid owning the socket whose local address is one of `keys`, from the text of /proc/net/tcp{,6}. */
export function uidOfSocket(table: string, keys: string[]): number | undefined {
  for (const line of table.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // sl local rem st queues timer retrnsmt uid ...
    if (cols.length < 8 || !cols[0].endsWith(':')) continue;
    if (keys.includes(cols[1].toUpperCase())) {
      const uid = Number(cols[7]);
      return Number.isInteger(uid) ? uid : undefined;
    }
  }
  return undefined;
}

/** The uid of the local process that owns the client end of a connection, or undefined when the kernel does not show it. */
export async function peerUid(remoteAddress: string, remotePort: number): Promise<number | undefined> {
  const keys = socketKeys(remoteAddress, remotePort);
  if (keys.length === 0) return undefined;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const uid = uidOfSocket(text, keys);
    if (uid !== undefined) return uid;
  }
  return undefined;
}
