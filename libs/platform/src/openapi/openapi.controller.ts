import { createHash } from 'node:crypto';
import { Controller, Get, Inject, type INestApplicationContext, type OnApplicationBootstrap, Res } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import type { Response } from 'express';
import { API_PREFIX } from '../app/tokens';
import { collectRoutes } from '../auth/route-inventory';
import { Public } from '../auth/route-policy.decorator';
import { API_CONTRACT, ApiContract, type ApiContractSpec } from './api-contract.decorator';
import { AnyObject } from './api-schemas';
import { buildOpenApiDocument, type ApiRoute, type OpenApiDocument } from './openapi-document';
import { renderApiReference } from './api-reference';

/** Every route of an application with its `@ApiContract` (the input of the OpenAPI document). */
export function collectApiRoutes(app: Pick<INestApplicationContext, 'get'>): ApiRoute[] {
  const discovery = app.get(DiscoveryService);
  const scanner = app.get(MetadataScanner);
  const handlers = new Map<string, (...args: unknown[]) => unknown>();
  for (const wrapper of discovery.getControllers()) {
    const type = wrapper.metatype as { name: string } | undefined;
    const instance = wrapper.instance as object | undefined;
    if (!type || !instance) continue;
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) handlers.set(`${type.name}.${name}`, prototype[name] as () => unknown);
  }
  return collectRoutes(app as INestApplicationContext).map((route) => {
    const handler = handlers.get(`${route.controller}.${route.handler}`);
    const contract = handler ? (Reflect.getMetadata(API_CONTRACT, handler) as ApiContractSpec | undefined) : undefined;
    const httpCode = handler ? (Reflect.getMetadata(HTTP_CODE_METADATA, handler) as number | undefined) : undefined;
    return { ...route, ...(contract ? { contract } : {}), ...(httpCode ? { httpCode } : {}) };
  });
}

/**
 * `GET /api/v1/openapi.json` and the reference page `GET /api/v1/docs`, built once at start-up from
 * the routes this process serves (the all-in-one: all five services). Public: the document holds
 * the API's shape and each route's declared policy, never data.
 */
@Controller(API_PREFIX)
export class OpenApiController implements OnApplicationBootstrap {
  private document?: OpenApiDocument;
  private json = '';
  private html = '';
  private csp = '';

  constructor(@Inject(ModuleRef) private readonly moduleRef: ModuleRef) {}

  onApplicationBootstrap(): void {
    this.document = buildOpenApiDocument(
      collectApiRoutes({ get: (token: never) => this.moduleRef.get(token, { strict: false }) } as Pick<INestApplicationContext, 'get'>),
    );
    this.json = JSON.stringify(this.document);
    const page = renderApiReference(this.document);
    this.html = page.html;
    // The page is static: no script at all, its one <style> allowed by hash; nothing loads from elsewhere.
    this.csp = [
      "default-src 'none'",
      `style-src 'sha256-${createHash('sha256').update(page.style).digest('base64')}'`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
  }

  @Public()
  @ApiContract({ summary: 'This OpenAPI 3.1 document', responses: { 200: AnyObject } })
  @Get('openapi.json')
  openapi(@Res() res: Response): void {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('cache-control', 'no-cache');
    res.send(this.json);
  }

  @Public()
  @ApiContract({ summary: 'The API reference page (static HTML)', responses: { 200: { contentType: 'text/html' } } })
  @Get('docs')
  docs(@Res() res: Response): void {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('content-security-policy', this.csp);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
    res.send(this.html);
  }
}
