import * as crypto from 'node:crypto';

type OneShotHash = (algorithm: string, data: string | Buffer, encoding: 'hex') => string;
// crypto.hash (Node >= 20.12) is a one-shot digest about twice as fast as
// createHash().update().digest() for the small inputs events are.
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;

/** Lower-case hex SHA-256 of a string's UTF-8 bytes, or of raw bytes. */
export const sha256Hex: (data: string | Buffer) => string = oneShot
  ? (data) => oneShot('sha256', data, 'hex')
  : (data) => crypto.createHash('sha256').update(data).digest('hex');

export function sha256(data: string | Buffer): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}
