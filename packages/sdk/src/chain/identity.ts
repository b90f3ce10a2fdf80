import { streamProblem } from '../options.js';

/** Characters the stream pattern allows in one segment; anything else in a host name becomes `-`. */
const OUTSIDE_SEGMENT = /[^A-Za-z0-9._:@-]/g;

/**
 * The default stream id, `<service>/<host>/<UUIDv7>`. The UUID is drawn once per client, so
 * replicas (different hosts, or several processes on one host) and restarts never share a
 * stream; the service and host make the id readable in searches.
 */
export function defaultStreamId(service: string, hostname: string, uuid: string): string {
  let host = hostname.replace(OUTSIDE_SEGMENT, '-');
  if (host.length === 0) host = 'host';
  // Stream ids are at most 200 characters (PROTOCOL.md §3): shorten the host, never the UUID.
  const room = 200 - service.length - uuid.length - 2;
  if (host.length > room) host = host.slice(0, Math.max(1, room));
  const stream = `${service}/${host}/${uuid}`;
  const problem = streamProblem(stream);
  if (problem !== undefined) throw new Error(`default stream id ${stream} ${problem}`);
  return stream;
}
