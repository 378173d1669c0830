/** Injection tokens of the platform (values that are not classes). */
export const CONFIG = Symbol('CONFIG');
export const LOGGER = Symbol('LOGGER');
export const DATABASE_URL = Symbol('DATABASE_URL');
export const SERVICE_DATA_SOURCE = Symbol('SERVICE_DATA_SOURCE');
export const SERVICE_NAME = Symbol('SERVICE_NAME');
export const API_PREFIX = 'api/v1';
