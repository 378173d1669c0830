import { SetMetadata } from '@nestjs/common';
import type { ErrorCode } from '@custodian/contracts';
import type { PolicyErrorCode } from '@custodian/policy';
import type { TSchema } from '@sinclair/typebox';

export const API_CONTRACT = 'custodian:api-contract';

/** One documented answer of a route: a JSON schema, `null` for no body, or a non-JSON content type. */
export type ApiResponseSpec = TSchema | null | { schema?: TSchema; contentType: string; description?: string };

/**
 * What a route takes and answers, for the OpenAPI document (docs/api.md). The schemas are the
 * TypeBox values the handler validates with, so the document and the check cannot drift apart.
 */
export interface ApiContractSpec {
  summary?: string;
  description?: string;
  /** Request body (application/json unless `bodyType` says otherwise). */
  body?: TSchema;
  bodyType?: string;
  /** An object schema; each property becomes one query parameter. */
  query?: TSchema;
  /** Request headers the route reads (e.g. `if-match`), by lower-case name. */
  headers?: Readonly<Record<string, { required?: boolean; description?: string }>>;
  /** Success answers by status. */
  responses: Readonly<Record<number, ApiResponseSpec>>;
  /** Problem codes this route answers beyond the ones every route of its kind may answer. */
  problems?: readonly (ErrorCode | PolicyErrorCode)[];
  /** Errors of this route are not problem+json but this media type (SCIM answers SCIM error documents). */
  errorContentType?: string;
}

/** Associates a route with its request and response schemas. Every route carries one (the OpenAPI test). */
export const ApiContract = (spec: ApiContractSpec): MethodDecorator => SetMetadata(API_CONTRACT, Object.freeze({ ...spec }));
