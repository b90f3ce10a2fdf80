/** Written into every stream.opened event; version.test.ts keeps it equal to package.json. */
export const SDK_NAME = '@vigil/sdk';
export const SDK_VERSION = '0.1.0';
