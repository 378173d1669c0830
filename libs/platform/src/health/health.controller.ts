import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { Public } from '../auth/route-policy.decorator';
import { MetricsService } from '../metrics/metrics.service';
import { HealthRegistry } from './health.registry';
import { ApiContract } from '../openapi/api-contract.decorator';
import { AnyObject } from '../openapi/api-schemas';

@Controller()
export class HealthController {
  constructor(
    @Inject(HealthRegistry) private readonly health: HealthRegistry,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  @Public()
  @ApiContract({ summary: 'Liveness', responses: { 200: AnyObject } })
  @Get('health/live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Public()
  @ApiContract({
    summary: 'Readiness: every service database and the bus (503 with the same body when not ready)',
    responses: { 200: AnyObject, 503: AnyObject },
  })
  @Get('health/ready')
  async ready(@Res({ passthrough: true }) res: Response): Promise<{ status: string; checks: Record<string, string> }> {
    const { ready, checks } = await this.health.readiness();
    res.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not_ready', checks };
  }

  /** Operational metrics carry no record data; restrict the path at the ingress if needed. */
  @Public()
  @ApiContract({ summary: 'Prometheus metrics (no record data)', responses: { 200: { contentType: 'text/plain' } } })
  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  async metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
