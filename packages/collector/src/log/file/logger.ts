/** The part of a pino logger the embedded log uses; a pino logger fits as it is. */
export interface FileLogLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export const silentLogger: FileLogLogger = {
  warn: () => undefined,
  info: () => undefined,
};
