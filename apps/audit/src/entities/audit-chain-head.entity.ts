import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The head of one chain; locking this row FOR UPDATE is the one serialized write path per org. */
@Entity({ name: 'audit_chain_head' })
export class AuditChainHeadEntity {
  @PrimaryColumn({ name: 'chain_id', type: 'uuid' })
  chainId!: string;

  @Column({ type: 'bigint', default: 0 })
  seq!: string;

  @Column({ name: 'head_hash', type: 'char', length: 64 })
  headHash!: string;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;
}
