import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';

/**
 * Writes a file readable by its owner only, atomically: a temporary file, fsync, rename. Used
 * for the keys Vigil generates (checkpoint keys, the privacy master key). With `keepExisting`,
 * a file that appeared meanwhile — another process starting at the same moment — is kept and
 * this text dropped. Returns whether this text was written.
 */
export function writePrivateFile(
  path: string,
  text: string,
  options: { readonly keepExisting?: boolean } = {},
): boolean {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (options.keepExisting && existsSync(path)) {
    rmSync(tmp, { force: true });
    return false;
  }
  renameSync(tmp, path);
  chmodSync(path, 0o600);
  return true;
}
