import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Token signing keys; the private half is stored only encrypted with the master key. */
@Entity({ name: 'signing_key' })
export class SigningKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  kid!: string;

  @Column({ type: 'varchar', length: 16 })
  alg!: string;

  @Column({ name: 'public_jwk', type: 'jsonb' })
  publicJwk!: Record<string, string>;

  @Column({ name: 'private_key_enc', type: 'text' })
  privateKeyEnc!: string;

  @Column({ type: 'boolean', default: true })
  active!: boolean;

  /**
   * A rotated-in key is published in the JWKS at once but signs only from this time on, so every
   * verifier can fetch it before the first token needs it (null: signs at once).
   */
  @Column({ name: 'activates_at', type: 'timestamptz', nullable: true })
  activatesAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'retired_at', type: 'timestamptz', nullable: true })
  retiredAt!: Date | null;
}
