import { Controller, Get, Inject, Req } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, SERVICE_DATA_SOURCE } from '@custodian/platform';
import type { Request } from 'express';
import type { DataSource } from 'typeorm';
import { ObjectDefinitionEntity } from '../entities/object-definition.entity';

interface ObjectSummary {
  name: string;
  label: string;
  version: number;
}

@Controller(`${API_PREFIX}/meta/objects`)
export class ObjectMetadataController {
  constructor(@Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource) {}

  /**
   * The objects of the caller's organization (R1: never another's). Resolving the caller makes
   * objects ask identity for the principal snapshot over the bus — the cross-service path.
   * App access and per-object read filtering arrive with issues #3 and #5.
   */
  @RequirePolicy({ reason: 'object names are visible to every member; their records are governed separately' })
  @Get()
  async list(@Req() req: Request & { principal: PrincipalSnapshot }): Promise<{ objects: ObjectSummary[]; policyVersion: number }> {
    const rows = await this.ds
      .getRepository(ObjectDefinitionEntity)
      .find({ where: { orgId: req.principal.orgId }, order: { name: 'ASC' }, take: 500 });
    return { objects: rows.map((r) => ({ name: r.name, label: r.label, version: r.version })), policyVersion: req.principal.policyVersion };
  }
}
