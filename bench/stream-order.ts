/**
 * How much of an image a converter built on mksquashfs could hand over
 * before `docker save` ends (issue 27, item 1). mksquashfs cannot take an
 * entry back, so a layer's files may go in only once every layer above it
 * has streamed past (its deletions and replacements known): the layers
 * go in top first, each as soon as the ones above it are in. What
 * arrives out of that order waits for the end of the stream. This reads
 * one real save stream and counts the layer bytes that would not wait.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { connectEngine } from '../src/engine/client';

export interface StreamOrder {
  /** Layer members, base first, with their sizes. */
  stack: Array<{ name: string; bytes: number }>;
  /** The same members in the order the stream sent them. */
  arrival: string[];
}

/** Layer bytes that could be converted while the stream still runs, and the total. Pure. */
export function finalBeforeEnd(order: StreamOrder): { early: number; total: number } {
  const at = new Map(order.arrival.map((name, i) => [name, i]));
  let early = 0;
  let total = 0;
  order.stack.forEach((layer, k) => {
    total += layer.bytes;
    const above = order.stack.slice(k + 1);
    if (above.every((a) => at.get(a.name)! < at.get(layer.name)!)) early += layer.bytes;
  });
  return { early, total };
}

/** Reads `image`'s save stream once: the members' order and the manifest's stack. */
export async function streamOrder(image: string): Promise<StreamOrder> {
  const engine = await connectEngine();
  const source = await engine.saveImage((await engine.inspectImage(image)).id);
  const sizes = new Map<string, number>();
  const arrival: string[] = [];
  let layers: string[] | undefined;
  const extract = tar.extract();
  extract.on('entry', (h, body, next) => {
    const member = body as unknown as Readable;
    if (h.name === 'manifest.json') {
      const chunks: Buffer[] = [];
      member.on('data', (c: Buffer) => chunks.push(c));
      member.on('end', () => {
        layers = (JSON.parse(Buffer.concat(chunks).toString()) as Array<{ Layers: string[] }>)[0].Layers;
        next();
      });
      return;
    }
    if (h.type === 'file') {
      sizes.set(h.name, h.size ?? 0);
      arrival.push(h.name);
    }
    member.on('end', () => next());
    member.resume();
  });
  await pipeline(source, extract);
  if (!layers) throw new Error(`${image}: the save stream has no manifest.json`);
  return {
    stack: layers.map((name) => ({ name, bytes: sizes.get(name) ?? 0 })),
    arrival: arrival.filter((n) => layers!.includes(n)),
  };
}
