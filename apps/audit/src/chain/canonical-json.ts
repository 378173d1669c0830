/**
 * The canonical encoding every row hash is computed over (docs/audit.md, "Canonical encoding") is
 * the platform's RFC 8785 encoder; it is byte for byte this file's earlier implementation on every
 * JSON value (property test in libs/platform/src/validation/canonical-json.spec.ts), so existing
 * rows still verify.
 */
export { canonicalJson } from '@custodian/platform';
