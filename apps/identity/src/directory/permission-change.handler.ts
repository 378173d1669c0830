import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ApplyIdentityPermissionChange, DescribePermissionChange } from '@custodian/contracts';
import { BUS, type Bus } from '@custodian/platform';
import { PermissionChangeService } from './permission-change.service';

/** Identity's side of proposed permission changes on the bus: describe (who, before/after) and apply. */
@Injectable()
export class PermissionChangeBusHandler implements OnModuleInit {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(PermissionChangeService) private readonly changes: PermissionChangeService,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.bus.handle(DescribePermissionChange, (req) => this.changes.describe(req));
    await this.bus.handle(ApplyIdentityPermissionChange, (req) => this.changes.apply(req));
  }
}
