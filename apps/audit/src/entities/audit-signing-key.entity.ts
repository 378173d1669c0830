import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The checkpoint signing key: public key in the clear, private key AES-256-GCM sealed under the master key. */
@Entity({ name: 'audit_signing_key' })
export class AuditSigningKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  kid!: string;

  @Column({ name: 'public_key', type: 'text' })
  publicKey!: string;

  @Column({ name: 'private_key_sealed', type: 'text' })
  privateKeySealed!: string;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}
