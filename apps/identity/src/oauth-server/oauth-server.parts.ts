import { AccessTokenRevocationService } from './access-token-revocation.service';
import { OAuthConsentsController } from './oauth-consents.controller';
import { OAuthConsentsService } from './oauth-consents.service';
import { OAuthInteractionService } from './oauth-interaction.service';
import { OAuthServerController } from './oauth-server.controller';
import { OAuthServerService } from './oauth-server.service';

/** The OAuth 2.1 authorization server for MCP clients, registered in IdentityModule (docs/sso.md). */
export const OAUTH_SERVER_CONTROLLERS = [OAuthServerController, OAuthConsentsController];
export const OAUTH_SERVER_PROVIDERS = [OAuthServerService, OAuthConsentsService, OAuthInteractionService, AccessTokenRevocationService];
