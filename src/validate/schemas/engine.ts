/**
 * The Docker Engine API's answers sifkit reads (through dockerode): image
 * lists and inspects, container lists, creates and waits, and each line of
 * the build stream. An answer is data until it fits: an engine (or a proxy
 * in front of one) that answers 200 with something else is a failure with
 * one line naming the field, never a TypeError further on. Only the fields
 * sifkit uses are checked (`looseObject`: engines add fields).
 */
import { z } from 'zod';
import { ociConfigSchema } from './docker';

/** An image ID as the engine gives it. */
const imageId = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'an image ID (sha256: and 64 hex digits)');
/** A container ID: 64 hex digits. */
const containerId = z.string().regex(/^[0-9a-f]{64}$/, 'a container ID (64 hex digits)');
const labels = z.record(z.string(), z.string()).nullish();
const size = z.number().int().nonnegative();

/** GET /images/json: one entry per image. */
export const imageListAnswer = z.array(
  z.looseObject({
    Id: imageId,
    RepoTags: z.array(z.string()).nullish(),
    /** Seconds since the epoch. */
    Created: z.number().int().nonnegative(),
    Size: size,
    Labels: labels,
  }),
);

/** GET /images/{name}/json. */
export const imageInspectAnswer = z.looseObject({
  Id: imageId,
  RepoTags: z.array(z.string()).nullish(),
  Size: size,
  Architecture: z.string(),
  /** ISO 8601. */
  Created: z.string(),
  Config: ociConfigSchema.nullish(),
  /** The engine version that built the image (empty for images the engine loaded). */
  DockerVersion: z.string().optional(),
});
export type ImageInspectAnswer = z.infer<typeof imageInspectAnswer>;

/** GET /version: what the provenance records of the engine. */
export const versionAnswer = z.looseObject({ Version: z.string(), ApiVersion: z.string() });

/** GET /containers/json: one entry per container. */
export const containerListAnswer = z.array(z.looseObject({ Id: containerId, Labels: labels }));

/** POST /containers/create: the new container's ID. */
export const containerCreateAnswer = z.looseObject({ id: containerId });

/** POST /containers/{id}/wait. */
export const containerWaitAnswer = z.looseObject({ StatusCode: z.number().int() });

/**
 * One JSON line of POST /build's stream: progress text (`stream`,
 * `status`), the image (`aux.ID`), or a failure (`error`, `errorDetail`),
 * which arrives with HTTP 200.
 */
export const buildLineAnswer = z.looseObject({
  stream: z.string().optional(),
  status: z.string().optional(),
  error: z.string().optional(),
  errorDetail: z.looseObject({ message: z.string().optional() }).optional(),
  // The image arrives as aux.ID; BuildKit's trace is an aux string, carrying none.
  aux: z.union([z.looseObject({ ID: imageId.optional() }), z.string()]).optional(),
});
export type BuildLineAnswer = z.infer<typeof buildLineAnswer>;
