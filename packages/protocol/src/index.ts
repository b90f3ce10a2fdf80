export {
  PROTOCOL_VERSION,
  SEALED_MEDIA_TYPE,
  ZERO_HASH,
  CATEGORIES,
  OUTCOMES,
  ACCESS_CHANGES,
  NON_PERSON_TYPES,
  PERSON_TARGET_TYPES,
  RESERVED_STREAM_PREFIXES,
  RESERVED_INPUT_MEMBERS,
  STREAM_OPENED,
  STREAM_CLOSED,
  PATTERNS,
  LIMITS,
} from './constants.js';
export type { Category, Outcome, AccessChangeKind } from './constants.js';
export {
  VigilError,
  InvalidEventError,
  NotCanonicalError,
  ProtocolErrorCodes,
  ProtocolErrorDescriptions,
} from './errors.js';
export type { ProtocolErrorCode } from './errors.js';
export type { ErrorDetail, VigilErrorOptions } from './errors.js';
export type {
  JsonValue,
  JsonObject,
  Party,
  Resource,
  EventContext,
  AccessChange,
  EventContent,
  EventInput,
  EventRecord,
  Disclosure,
  Disclosures,
  SealedEvent,
  ChainLink,
} from './types.js';
export {
  canonicalJson,
  isCanonicalRecord,
  isWellFormed,
  illFormedPath,
  stringPath,
} from './canonical.js';
export { sha256Hex, sha256 } from './hash.js';
export {
  COMMITMENT_DOMAIN,
  commitmentOf,
  commitmentOfCanonical,
  commitmentOfSaltText,
  canonicalValue,
  encodeSalt,
  decodeSalt,
} from './commitment.js';
export { canonicalBase64urlLength, decodeBase64url, isCanonicalBase64url } from './base64url.js';
export { RandomPool, randomSaltSource, SALT_BYTES } from './random.js';
export type { SaltSource } from './random.js';
export { formatTime, parseTime } from './time.js';
export { newEventId, derivedEventId, uuidV7Time } from './uuid.js';
export { toPointer, parsePointer, escapeToken, unescapeToken, getAt } from './pointer.js';
export {
  requiredPersonalPaths,
  committablePathProblem,
  isPersonActor,
  isPersonTarget,
  personalSetProblems,
  plainValueProblem,
} from './personal.js';
export { sealEvent, personalPathsOf } from './seal.js';
export type { Sealed, CompleteInput } from './seal.js';
export { judgeLink, checkBatchLinks } from './chain.js';
export type { StreamHead, LinkVerdict, BatchLinkItem } from './chain.js';
export {
  checkSealedEvent,
  checkLoggedSealedEvent,
  checkFramedEvent,
  checkLoggedFramedEvent,
  checkEventInput,
} from './validate.js';
export { parseFramedBody, frameSealedEvent, frameSealedEvents, firstBadUtf8 } from './framing.js';
export type { Frame, FramedBody } from './framing.js';
export { jsonShapeProblem } from './json-shape.js';
export type { ShapeLimits, ShapeProblem } from './json-shape.js';
export type { Checked, CheckedSealed } from './validate.js';
export {
  eventInputSchema,
  eventRecordSchema,
  sealedEventSchema,
  partySchema,
  resourceSchema,
  contextSchema,
  accessSchema,
  correctsSchema,
} from './schema.js';
export {
  LEAF_DOMAIN,
  EMPTY_TREE_ROOT,
  leafData,
  hashLeaf,
  hashChildren,
  eventLeafHash,
  hashFromHex,
  splitPoint,
  rootOf,
  completeSubtrees,
  nodeRange,
  foldSubtrees,
  inclusionProofRanges,
  consistencyProofRanges,
  inclusionProof,
  consistencyProof,
  rootFromInclusionProof,
  verifyInclusion,
  verifyConsistency,
  MerkleFrontier,
} from './merkle.js';
export type { LeafFields, NodeRef, LeafRange } from './merkle.js';
export {
  COLUMNS_DOMAIN,
  COLUMN_FIELDS,
  columnDigest,
  columnDigestHex,
  columnDigestInput,
  ipv6Bytes,
} from './columns.js';
export type { ColumnKind } from './columns.js';
export {
  CHECKPOINT_VERSION,
  CHECKPOINT_DOMAIN,
  SIGNATURE_ALGORITHM,
  checkpointStatementProblem,
  encodeCheckpoint,
  checkpointId,
  checkpointSigningInput,
  parseCheckpoint,
  rawPublicKey,
  publicKeyObject,
  privateKeyFromSeed,
  checkpointKeyId,
  signCheckpoint,
  createSignedCheckpoint,
  verifyEd25519,
  verifyCheckpoint,
} from './checkpoint.js';
export type {
  PartitionHead,
  CheckpointStatement,
  SignedCheckpoint,
  CheckpointCheck,
  PublishedKey,
  PublicKeyInput,
} from './checkpoint.js';
export { PROOF_VERSION, verifyInclusionProof, verifyConsistencyProof } from './proof.js';
export type {
  ProvedLeaf,
  InclusionProof,
  ConsistencyProof,
  ProofCheck,
  ConsistencyCheck,
} from './proof.js';
export { SUBJECT_DIGEST_DOMAIN, normalEmail, subjectDigest, subjectDigests } from './subject.js';
export type { SubjectRef, SubjectValueKind } from './subject.js';
export { domainSigningInput, parseCanonical, signatureProblem } from './signed.js';
export {
  BUNDLE_VERSION,
  BUNDLE_FORMAT,
  BUNDLE_DOMAIN,
  SUBJECT_ROLES,
  BundleWriter,
  bundleSigningInput,
  verifyBundle,
} from './bundle.js';
export type {
  SubjectRole,
  BundleSubject,
  BundleHeader,
  BundleProof,
  BundleEntry,
  BundleStatement,
  BundleCheck,
} from './bundle.js';
export {
  SUBJECT_PARTIES,
  ACTOR_CONTEXT_PATHS,
  ADMIN_STREAM_PREFIX,
  subjectPathsOf,
  subjectEntryProblems,
} from './bundle-subject.js';
export type {
  PartyRole,
  BundleSubjectForms,
  PartyEntry,
  SubjectEntryCheck,
} from './bundle-subject.js';
export {
  ERASURE_RECEIPT_VERSION,
  ERASURE_RECEIPT_TYPE,
  ERASURE_RECEIPT_DOMAIN,
  erasureReceiptProblem,
  encodeErasureReceipt,
  erasureReceiptSigningInput,
  signedErasureReceipt,
  verifyErasureReceipt,
} from './receipt.js';
export type {
  ErasedEvent,
  ErasureCounts,
  ErasureReceiptStatement,
  SignedErasureReceipt,
  ErasureReceiptCheck,
} from './receipt.js';
export {
  CORRECTION_ACTION,
  CORRECTED_MEMBER,
  correctablePathProblem,
  correctedValuePath,
  correctedFields,
  correctionRef,
  applyCorrections,
} from './correction.js';
export type { CorrectionRef } from './correction.js';
