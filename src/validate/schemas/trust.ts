/**
 * The tree's trust policy (`<root>/.sifkit/trust-policy.yaml`): which keys
 * may sign which step. `build` signatures are what `stage` and `promote`
 * require on a SIF (made by the release's convert stage); `tested`
 * signatures are what `promote` adds (and `verify --deep` checks) over the
 * staged file's and its test results' digests. Key files are named
 * relative to the policy file.
 */
import { z } from 'zod';

const trusted = z.strictObject({
  /** PEM public keys (DSSE). */
  keys: z.array(z.string().min(1)).optional(),
  /** An armored OpenPGP keyring (PGP clear-signed signatures). */
  keyring: z.string().min(1).optional(),
  /** An X.509 certificate whose key signs, and the CA pool it must chain to. */
  cert: z.string().min(1).optional(),
  ca_pool: z.string().min(1).optional(),
});

export const trustPolicySchema = z.strictObject({
  version: z.literal(1),
  build: trusted,
  tested: trusted.optional(),
});

export type TrustPolicyDoc = z.infer<typeof trustPolicySchema>;
export type TrustedKeysDoc = z.infer<typeof trusted>;
