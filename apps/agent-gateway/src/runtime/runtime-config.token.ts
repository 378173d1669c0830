/** Injection token of the agent runtime's process settings (RuntimeConfig). */
export const RUNTIME_CONFIG = Symbol('RUNTIME_CONFIG');
