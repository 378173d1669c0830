import { Controller, Get, Header, Inject } from '@nestjs/common';
import { Public, ApiContract, AnyObject } from '@custodian/platform';
import { McpAuthenticator } from './mcp-authenticator';

/** RFC 9728 protected resource metadata of `/mcp`: public, as clients read it before they have a token. */
@Controller('.well-known')
export class ProtectedResourceController {
  constructor(@Inject(McpAuthenticator) private readonly auth: McpAuthenticator) {}

  @Public()
  @ApiContract({ summary: 'OAuth protected resource metadata (RFC 9728)', responses: { 200: AnyObject } })
  @Get('oauth-protected-resource')
  @Header('Cache-Control', 'public, max-age=300')
  metadata(): Record<string, unknown> {
    return this.auth.metadata();
  }

  /** The path-suffixed form (RFC 9728 §3.1), which clients derive from the resource URL …/mcp. */
  @Public()
  @ApiContract({ summary: 'OAuth protected resource metadata of /mcp (RFC 9728)', responses: { 200: AnyObject } })
  @Get('oauth-protected-resource/mcp')
  @Header('Cache-Control', 'public, max-age=300')
  metadataForMcp(): Record<string, unknown> {
    return this.auth.metadata();
  }
}
