import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A signed statement "chain X had head hash H at sequence S" (Ed25519; see docs/audit.md). */
@Entity({ name: 'audit_checkpoint' })
@Index('audit_checkpoint_chain_seq_idx', ['chainId', 'seq'])
export class AuditCheckpointEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'chain_id', type: 'uuid' })
  chainId!: string;

  @Column({ type: 'bigint' })
  seq!: string;

  @Column({ name: 'head_hash', type: 'char', length: 64 })
  headHash!: string;

  @Column({ name: 'signed_at', type: 'timestamptz' })
  signedAt!: Date;

  @Column({ name: 'key_id', type: 'varchar', length: 64 })
  keyId!: string;

  @Column({ type: 'varchar', length: 128 })
  signature!: string;
}
