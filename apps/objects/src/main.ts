import { runService } from '@custodian/platform';
import { ObjectsModule } from './objects.module';

void runService('objects', ObjectsModule);
