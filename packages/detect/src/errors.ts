import { VigilError, type ErrorDetail } from '@vigil/protocol';

/** Errors of the detection package; codes are documented in ERRORS.md (generated from here). */
export const DetectErrorCodes = {
  RULE_INVALID: 'VIGIL_ERR_RULE_INVALID',
  DETECT_CONFIG_INVALID: 'VIGIL_ERR_DETECT_CONFIG_INVALID',
  CHECKPOINT_INVALID: 'VIGIL_ERR_DETECT_CHECKPOINT_INVALID',
} as const;

export type DetectErrorCode = (typeof DetectErrorCodes)[keyof typeof DetectErrorCodes];

/** One line per code; ERRORS.md is generated from these tables and a test keeps them equal. */
export const DetectErrorDescriptions: { readonly [K in DetectErrorCode]: string } = {
  VIGIL_ERR_RULE_INVALID:
    'a detection rule file is invalid (YAML syntax, an unknown field or modifier, a bad condition); details name the rule, the line and the field of each problem.',
  VIGIL_ERR_DETECT_CONFIG_INVALID:
    'the detection overrides are invalid (an unknown rule id, a bad time zone, CIDR or action mapping); details name each setting.',
  VIGIL_ERR_DETECT_CHECKPOINT_INVALID:
    'a detector checkpoint cannot be restored: not one this version wrote, or written for another rule pack.',
};

/** A problem in a rule file, a tenant override or a checkpoint; `details` lists each one. */
export class DetectError extends VigilError {
  constructor(code: DetectErrorCode, message: string, details: readonly ErrorDetail[] = []) {
    super(code, message, { status: 400, details });
    this.name = 'DetectError';
  }
}
