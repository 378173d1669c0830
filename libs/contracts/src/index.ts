export * from './errors';
export * from './contract';
export * from './identity.contracts';
export * from './audit.contracts';
export * from './objects.contracts';
export * from './bundles.contracts';
export * from './audit-visibility.contracts';
