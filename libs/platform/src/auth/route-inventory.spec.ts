import { Controller, Get, Module, Post } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { collectRoutes } from './route-inventory';
import { Public } from './route-policy.decorator';

// The route inventory feeds the deny-by-default test, so every path a handler answers on must be
// listed on its own: an array of paths is several routes, never one path joined with slashes.

@Controller('things')
class ThingsController {
  @Public()
  @Get(['a', 'b'])
  both(): string {
    return 'ok';
  }

  @Public()
  @Post()
  create(): string {
    return 'ok';
  }
}

@Controller(['v1/items', 'v2/items'])
class ItemsController {
  @Public()
  @Get(':id')
  one(): string {
    return 'ok';
  }
}

@Module({ imports: [DiscoveryModule], controllers: [ThingsController, ItemsController] })
class InventoryModule {}

describe('collectRoutes', () => {
  it('lists each path of an array of paths as its own route, for handler and controller paths', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [InventoryModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const routes = collectRoutes(app)
        .map((r) => `${r.method} ${r.path} ${r.handler}`)
        .sort();
      expect(routes).toEqual([
        'GET /things/a both',
        'GET /things/b both',
        'GET /v1/items/:id one',
        'GET /v2/items/:id one',
        'POST /things create',
      ]);
    } finally {
      await app.close();
    }
  });
});
