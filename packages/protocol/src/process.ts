/**
 * Whether a process with this pid exists: the check behind the pid lock files of the SDK's spool
 * and of the collector's embedded log, which take a directory over only from a process that is
 * gone, and behind the store's report of who holds its data directory. It lives here, beside the
 * wire format, only because this is the one package all of them depend on. Signal 0 tests for existence without delivering anything (kill(2)); EPERM means the
 * process exists under another user.
 *
 * Exported as `@vigil/protocol/process` for the other Vigil packages, not for applications.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
