export * from './api-contract.decorator';
export * from './api-schemas';
export * from './openapi-document';
export * from './openapi.controller';
